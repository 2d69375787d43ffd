import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BackendUnavailableError, type LimitRequest } from 'nestjs-api-auth';
import { RedisRateLimiter } from 'nestjs-api-auth/redis';
import { inOneWindow } from '../fixtures/rate-limit.setups.js';
import { track } from '../fixtures/settled.js';
import { connectRedis, deleteNamespace, scanKeys, startRedisProxy, uniqueNamespace } from '../fixtures/redis.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;

describe('RedisRateLimiter on a real Redis', () => {
  let a: Client;
  let b: Client;
  let namespace: string;
  let one: RedisRateLimiter;
  let two: RedisRateLimiter;

  beforeAll(async () => {
    a = await connectRedis();
    b = await connectRedis();
    namespace = uniqueNamespace('rate-limit-redis');
    // Two limiters on two connections: two instances of an app.
    one = new RedisRateLimiter(a, { namespace });
    two = new RedisRateLimiter(b, { namespace });
  });
  afterAll(async () => {
    await deleteNamespace(a, namespace);
    await a.close();
    await b.close();
  });

  it('allows exactly `limit` of 100 concurrent requests from two instances, remaining counted down once each', async () => {
    const request: LimitRequest = { rateLimits: [{ name: 's', limit: 10, windowMs: 2_000 }], quota: undefined, cost: 1 };
    let round = 0;
    const decisions = await inOneWindow(2_000, () => {
      const id = `burst-${round++}`;
      return Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? one : two).consume(id, request)));
    });
    const allowed = decisions.filter((d) => d.allowed);
    expect(allowed).toHaveLength(10);
    expect(allowed.map((d) => (d.allowed ? d.rateLimit!.remaining : -1)).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const d of decisions) {
      if (d.allowed) continue;
      expect(d).toMatchObject({ reason: 'rate_limited', rateLimit: { name: 's', limit: 10, remaining: 0 } });
      if (d.reason === 'rate_limited') {
        expect(d.retryAfterMs).toBeGreaterThan(0);
        expect(d.retryAfterMs).toBeLessThanOrEqual(4_000);
      }
    }
  });

  it('never takes a quota below zero under 200 concurrent requests from two instances', async () => {
    const request: LimitRequest = { rateLimits: [], quota: { limit: 50, refillIntervalMs: 3_600_000 }, cost: 1 };
    const decisions = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? one : two).consume('credits', request)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(50);
    for (const d of decisions) {
      if (!d.allowed) expect(d).toMatchObject({ reason: 'quota_exhausted', quota: { remaining: 0 } });
      else expect(d.quota!.remaining).toBeGreaterThanOrEqual(0);
    }
    const [quotaKey] = await scanKeys(a, `${namespace}{credits}:q:`);
    expect(await a.hGet(quotaKey!, 'u')).toBe('50');
    // A cost-free call reads the balance without spending.
    const balance = await one.consume('credits', { ...request, cost: 0 });
    expect(balance.allowed && balance.quota?.remaining).toBe(0);
  });

  it('charges the route cost and refuses what does not fit, changing nothing on refusal', async () => {
    const request: LimitRequest = { rateLimits: [{ name: 'm', limit: 100, windowMs: 60_000 }], quota: { limit: 12 }, cost: 5 };
    expect((await one.consume('cost', request)).allowed).toBe(true);
    expect((await two.consume('cost', request)).allowed).toBe(true);
    const before = await Promise.all((await scanKeys(a, `${namespace}{cost}:`)).sort().map((k) => a.hGetAll(k)));
    const refused = await one.consume('cost', request);
    expect(refused).toEqual({ allowed: false, reason: 'quota_exhausted', quota: { limit: 12, remaining: 2, resetMs: null }, retryAfterMs: null });
    const after = await Promise.all((await scanKeys(a, `${namespace}{cost}:`)).sort().map((k) => a.hGetAll(k)));
    expect(after).toEqual(before);
    const rest = await one.consume('cost', { ...request, cost: 2 });
    expect(rest.allowed && rest.quota?.remaining).toBe(0);
    expect(rest.allowed && rest.rateLimit).toMatchObject({ name: 'm', remaining: 97 });
  });

  it('lets counters expire when they stop mattering; a quota that never refills keeps its count', async () => {
    await one.consume('ttl', { rateLimits: [{ name: 'w', limit: 5, windowMs: 10_000 }], quota: { limit: 5 }, cost: 1 });
    await one.consume('ttl-refill', { rateLimits: [], quota: { limit: 5, refillIntervalMs: 60_000 }, cost: 1 });
    const window = await a.pTTL(`${namespace}{ttl}:rl:w:10000`);
    expect(window).toBeGreaterThan(10_000);
    expect(window).toBeLessThanOrEqual(20_000);
    expect(await a.pTTL(`${namespace}{ttl}:q:0`)).toBe(-1);
    const refill = await a.pTTL(`${namespace}{ttl-refill}:q:60000`);
    expect(refill).toBeGreaterThan(0);
    expect(refill).toBeLessThanOrEqual(60_000);
  });

  it('rejects with BackendUnavailableError at commandTimeoutMs, naming no key, when Redis stops answering', async () => {
    const proxy = await startRedisProxy();
    // Fake timers from the start, so the limiter's deadline is on the fake clock: only it,
    // at exactly 200 ms, ends a call that Redis never answers.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const client = await connectRedis({ url: proxy.url });
    try {
      const limiter = new RedisRateLimiter(client, { namespace, commandTimeoutMs: 200 });
      const request: LimitRequest = { rateLimits: [{ name: 'x', limit: 1, windowMs: 1_000 }], quota: undefined, cost: 1 };
      expect((await limiter.consume('frozen-key-id', request)).allowed).toBe(true);
      proxy.freeze();
      const consumed = track(limiter.consume('frozen-key-id', request));
      await vi.advanceTimersByTimeAsync(199);
      expect(consumed.settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(consumed.error).toBeInstanceOf(BackendUnavailableError);
      expect(String((consumed.error as Error).message)).not.toContain('frozen-key-id');
      const health = track(limiter.checkHealth());
      await vi.advanceTimersByTimeAsync(200);
      expect(health.error).toBeInstanceOf(Error);
    } finally {
      vi.useRealTimers();
      await proxy.stop();
      client.destroy();
    }
  });

  it('chains a redacted copy of an error reply, not the reply itself', async () => {
    // Real Redis quotes the arguments of an unknown command; the wrapper makes every
    // command unknown, so the reply echoes the counter keys.
    const echoing = { sendCommand: ([name, ...rest]: string[]) => a.sendCommand([`X${name}`, ...rest]) };
    const limiter = new RedisRateLimiter(echoing, { namespace });
    const request: LimitRequest = { rateLimits: [{ name: 'x', limit: 1, windowMs: 1_000 }], quota: undefined, cost: 1 };
    const counterKey = 'Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0h';
    const error = (await limiter.consume(counterKey, request).catch((e: unknown) => e)) as Error & { cause?: Error & { cause?: unknown } };
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect(error.message).toBe('The Redis rate limiter could not answer (SimpleError).');
    expect(error.cause!.name).toBe('SimpleError');
    expect(error.cause!.message).toMatch(/unknown command/);
    expect(error.cause!.message).toContain('[redacted]');
    expect(error.cause!.cause).toBeUndefined();
    expect(`${error.message} ${error.cause!.message} ${error.cause!.stack}`).not.toContain(counterKey);
  });

  it('refuses a client without sendCommand and bad options, naming them', () => {
    expect(() => new RedisRateLimiter({} as never)).toThrow(/node-redis client/);
    expect(() => new RedisRateLimiter(a, { commandTimeoutMs: -1 })).toThrow(/commandTimeoutMs/);
  });
});
