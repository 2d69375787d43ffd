import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisRateLimiter } from 'nestjs-api-auth/redis';
import { describeQuotaBalance } from '../fixtures/quota-balance.suite.js';
import { connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;

let a: Client;
let b: Client;
let namespace: string;
let limiters: RedisRateLimiter[] = [];
let calls = 0;
let next = 0;

beforeAll(async () => {
  a = await connectRedis();
  b = await connectRedis();
  namespace = uniqueNamespace('quota-balance-redis');
  // Two instances on two connections, taking turns: every check holds across a fleet.
  limiters = [new RedisRateLimiter(a, { namespace }), new RedisRateLimiter(b, { namespace })];
});
afterAll(async () => {
  await deleteNamespace(a, namespace);
  await a.close();
  await b.close();
});

describeQuotaBalance('RedisRateLimiter (two instances)', () => limiters[calls++ % 2]!, () => `redis-${next++}`);

describe('RedisRateLimiter: balances in Redis', () => {
  it('keeps a refilling quota only until its refill (a TTL) and one that never refills without one', async () => {
    await limiters[0]!.adjustQuota('ttl-a', { limit: 5, refillIntervalMs: 3_600_000 }, { set: 2 });
    await limiters[0]!.adjustQuota('ttl-b', { limit: 5 }, { add: 1 });
    const [refilling] = await scanKeys(a, `${namespace}{ttl-a}:`);
    const [forever] = await scanKeys(a, `${namespace}{ttl-b}:`);
    const ttl = Number(await a.sendCommand(['PTTL', refilling!]));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    expect(Number(await a.sendCommand(['PTTL', forever!]))).toBe(-1);
  });

  it('peeks without writing: reading an unused key creates no counter', async () => {
    await limiters[1]!.peek('never-used', { rateLimits: [{ name: 'r', limit: 3, windowMs: 1_000 }], quota: { limit: 3 } });
    expect(await scanKeys(a, `${namespace}{never-used}:`)).toEqual([]);
  });
});
