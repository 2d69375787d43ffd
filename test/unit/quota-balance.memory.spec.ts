import { describe, expect, it } from 'vitest';
import { MemoryRateLimiter } from 'nestjs-api-auth';
import { describeQuotaBalance } from '../fixtures/quota-balance.suite.js';

let next = 0;
const shared = new MemoryRateLimiter();
describeQuotaBalance('MemoryRateLimiter', () => shared, () => `mem-${next++}`);

describe('MemoryRateLimiter: a changed balance lasts until the refill', () => {
  it('returns to the limit at the next refill, whatever was set', async () => {
    const clock = { now: 3_600_000 * 10 + 5 };
    const limiter = new MemoryRateLimiter({ now: () => clock.now });
    const quota = { limit: 4, refillIntervalMs: 3_600_000 };
    expect(await limiter.adjustQuota('k', quota, { set: 40 })).toEqual({ limit: 4, remaining: 40, resetMs: 3_600_000 - 5 });
    clock.now += 3_600_000;
    expect((await limiter.peek('k', { rateLimits: [], quota })).quota).toEqual({ limit: 4, remaining: 4, resetMs: 3_600_000 - 5 });
  });

  it('reads a rate limit window as the sliding estimate, without the call a consume would add', async () => {
    const clock = { now: 10_000 };
    const limiter = new MemoryRateLimiter({ now: () => clock.now });
    const rule = { name: 'r', limit: 10, windowMs: 1_000 };
    for (let i = 0; i < 10; i++) await limiter.consume('k', { rateLimits: [rule], quota: undefined, cost: 1 });
    // 30% into the next window the previous 10 still weigh 7.
    clock.now = 11_300;
    expect((await limiter.peek('k', { rateLimits: [rule], quota: undefined })).rateLimits).toEqual([
      { name: 'r', limit: 10, remaining: 3, resetMs: 700 },
    ]);
    expect(limiter.size).toBe(1);
  });
});
