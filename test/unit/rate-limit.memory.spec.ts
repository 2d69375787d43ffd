import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryRateLimiter, type LimitRequest, type RateLimitRule } from 'nestjs-api-auth';

/** A limiter on a clock the test moves. */
function limiterAt(start: number) {
  const clock = { now: start };
  return { clock, limiter: new MemoryRateLimiter({ now: () => clock.now }) };
}

const rule = (limit: number, windowMs: number, name = 'r'): RateLimitRule => ({ name, limit, windowMs });
const only = (...rateLimits: RateLimitRule[]): LimitRequest => ({ rateLimits, quota: undefined, cost: 1 });

describe('MemoryRateLimiter: the sliding window counter', () => {
  it('allows exactly `limit` requests in a fresh window, counting remaining down to 0', async () => {
    const { limiter } = limiterAt(10_000);
    const decisions = await Promise.all(Array.from({ length: 8 }, () => limiter.consume('k', only(rule(5, 1_000)))));
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, true, false, false, false]);
    expect(decisions.slice(0, 5).map((d) => (d.allowed ? d.rateLimit?.remaining : -1))).toEqual([4, 3, 2, 1, 0]);
  });

  it('weighs the previous window by how much of it the sliding window still covers', async () => {
    const { clock, limiter } = limiterAt(10_000);
    for (let i = 0; i < 10; i++) expect((await limiter.consume('k', only(rule(10, 1_000)))).allowed).toBe(true);
    // 30% into the next window, the previous 10 still weigh 7: 3 more fit.
    clock.now = 11_300;
    const next = await Promise.all(Array.from({ length: 5 }, () => limiter.consume('k', only(rule(10, 1_000)))));
    expect(next.filter((d) => d.allowed)).toHaveLength(3);
    // Two windows later nothing weighs any more.
    clock.now = 13_000;
    const fresh = await Promise.all(Array.from({ length: 12 }, () => limiter.consume('k', only(rule(10, 1_000)))));
    expect(fresh.filter((d) => d.allowed)).toHaveLength(10);
  });

  it('never lets a burst straddling a window boundary through twice, unlike a fixed window', async () => {
    const { clock, limiter } = limiterAt(10_990);
    const before = await Promise.all(Array.from({ length: 5 }, () => limiter.consume('k', only(rule(5, 1_000)))));
    clock.now = 11_010;
    const after = await Promise.all(Array.from({ length: 5 }, () => limiter.consume('k', only(rule(5, 1_000)))));
    expect(before.filter((d) => d.allowed)).toHaveLength(5);
    expect(after.filter((d) => d.allowed)).toHaveLength(0);
  });

  it('reports the window end as resetMs', async () => {
    const { limiter } = limiterAt(10_250);
    const decision = await limiter.consume('k', only(rule(5, 1_000)));
    expect(decision.allowed && decision.rateLimit).toMatchObject({ name: 'r', limit: 5, remaining: 4, resetMs: 750 });
  });

  it('Retry-After is exact: one request fits after retryAfterMs and not a millisecond before', () =>
    fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 10, max: 5_000 }),
        fc.array(fc.integer({ min: 0, max: 3_000 }), { minLength: 1, maxLength: 60 }),
        async (limit, windowMs, gaps) => {
          const { clock, limiter } = limiterAt(1_000_000_000);
          const r = rule(limit, windowMs);
          for (const gap of gaps) {
            clock.now += gap;
            const decision = await limiter.consume('k', only(r));
            if (decision.allowed) continue;
            if (decision.reason !== 'rate_limited') throw new Error('unexpected reason');
            const refusedAt = clock.now;
            // A refusal changes no counter, so probing a millisecond early is harmless.
            clock.now = refusedAt + decision.retryAfterMs - 1;
            if (decision.retryAfterMs > 1) expect((await limiter.consume('k', only(r))).allowed).toBe(false);
            clock.now = refusedAt + decision.retryAfterMs;
            expect((await limiter.consume('k', only(r))).allowed).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    ));

  it('never allows more than `limit` inside one fixed window, whatever the arrival times', () =>
    fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 10, max: 1_000 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 200 }),
        async (limit, windowMs, gaps) => {
          const { clock, limiter } = limiterAt(5_000_000);
          const perWindow = new Map<number, number>();
          for (const gap of gaps) {
            clock.now += gap;
            if ((await limiter.consume('k', only(rule(limit, windowMs)))).allowed) {
              const w = Math.floor(clock.now / windowMs);
              perWindow.set(w, (perWindow.get(w) ?? 0) + 1);
            }
          }
          for (const count of perWindow.values()) expect(count).toBeLessThanOrEqual(limit);
        },
      ),
      { numRuns: 200 },
    ));

  it('is all or nothing across rules: a refusal by one limit counts against none', async () => {
    const { limiter } = limiterAt(10_000);
    const request = only(rule(100, 60_000, 'minute'), rule(2, 1_000, 'second'));
    const decisions = [];
    for (let i = 0; i < 5; i++) decisions.push(await limiter.consume('k', request));
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, false, false, false]);
    const refused = decisions[2]!;
    expect(!refused.allowed && refused.reason === 'rate_limited' && refused.rateLimit.name).toBe('second');
    // The minute limit saw 2 requests, not 5.
    const minuteOnly = await limiter.consume('k', only(rule(100, 60_000, 'minute')));
    expect(minuteOnly.allowed && minuteOnly.rateLimit?.remaining).toBe(97);
  });

  it('keeps separate counters per counter key and per rule', async () => {
    const { limiter } = limiterAt(10_000);
    expect((await limiter.consume('a', only(rule(1, 1_000)))).allowed).toBe(true);
    expect((await limiter.consume('a', only(rule(1, 1_000)))).allowed).toBe(false);
    expect((await limiter.consume('b', only(rule(1, 1_000)))).allowed).toBe(true);
    expect((await limiter.consume('a', only(rule(1, 1_000, 'other')))).allowed).toBe(true);
  });

  it('drops stale counters as new ones pile up: memory follows the keys in use, at most twice over', async () => {
    const { clock, limiter } = limiterAt(10_000);
    for (let i = 0; i < 10_000; i++) await limiter.consume(`old${i}`, only(rule(5, 1_000)));
    expect(limiter.size).toBe(10_000);
    // Two windows later the old counters weigh on nothing; new keys arrive.
    clock.now = 12_000;
    for (let i = 0; i < 15_000; i++) await limiter.consume(`new${i}`, only(rule(5, 1_000)));
    // Sweeps run as the map doubles: the one at 20,000 dropped every old counter.
    expect(limiter.size).toBe(15_000);
  });
});

describe('MemoryRateLimiter: quotas', () => {
  const quota = (limit: number, refillIntervalMs?: number, cost = 1): LimitRequest => ({
    rateLimits: [],
    quota: refillIntervalMs === undefined ? { limit } : { limit, refillIntervalMs },
    cost,
  });

  it('spends the cost of each request and refuses, with quota_exhausted, what does not fit', async () => {
    const { limiter } = limiterAt(10_000);
    const a = await limiter.consume('k', quota(12, undefined, 5));
    const b = await limiter.consume('k', quota(12, undefined, 5));
    const c = await limiter.consume('k', quota(12, undefined, 5));
    expect(a.allowed && a.quota?.remaining).toBe(7);
    expect(b.allowed && b.quota?.remaining).toBe(2);
    expect(c).toEqual({ allowed: false, reason: 'quota_exhausted', quota: { limit: 12, remaining: 2, resetMs: null }, retryAfterMs: null });
    // What is left still serves a cheaper call; a free call always passes and spends nothing.
    expect((await limiter.consume('k', quota(12, undefined, 2))).allowed).toBe(true);
    const free = await limiter.consume('k', quota(12, undefined, 0));
    expect(free.allowed && free.quota?.remaining).toBe(0);
  });

  it('never goes negative under 200 concurrent requests', async () => {
    const { limiter } = limiterAt(10_000);
    const decisions = await Promise.all(Array.from({ length: 200 }, () => limiter.consume('k', quota(50))));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(50);
    for (const d of decisions) {
      const remaining = d.allowed ? d.quota!.remaining : d.reason === 'quota_exhausted' ? d.quota.remaining : -1;
      expect(remaining).toBeGreaterThanOrEqual(0);
    }
  });

  it('refills at every multiple of the interval since the epoch, and says when', async () => {
    const { clock, limiter } = limiterAt(86_400_000 * 3 + 1_000);
    expect((await limiter.consume('k', quota(1, 86_400_000))).allowed).toBe(true);
    const refused = await limiter.consume('k', quota(1, 86_400_000));
    expect(refused).toMatchObject({ allowed: false, reason: 'quota_exhausted', retryAfterMs: 86_400_000 - 1_000 });
    clock.now = 86_400_000 * 4;
    expect((await limiter.consume('k', quota(1, 86_400_000))).allowed).toBe(true);
  });

  it('reports quota_exhausted before a rate limit, and a quota refusal counts against no rate limit', async () => {
    const { limiter } = limiterAt(10_000);
    const request: LimitRequest = { rateLimits: [rule(3, 1_000)], quota: { limit: 1 }, cost: 1 };
    expect((await limiter.consume('k', request)).allowed).toBe(true);
    for (let i = 0; i < 3; i++) expect(await limiter.consume('k', request)).toMatchObject({ reason: 'quota_exhausted' });
    // Only the one allowed request counted: 2 left in the rate limit.
    const rateOnly = await limiter.consume('k', only(rule(3, 1_000)));
    expect(rateOnly.allowed && rateOnly.rateLimit?.remaining).toBe(1);
  });
});
