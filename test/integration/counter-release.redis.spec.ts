import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisRateLimiter } from 'nestjs-api-auth/redis';
import { describeCounterRelease } from '../fixtures/counter-release.suite.js';
import { connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';
import { makeService } from '../fixtures/service.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;

let client: Client;
const namespace = uniqueNamespace('counter-release');

beforeAll(async () => {
  client = await connectRedis();
});
afterAll(async () => {
  await deleteNamespace(client, namespace);
  await client.close();
});

describeCounterRelease('RedisRateLimiter on a real Redis', async () => ({
  limiter: new RedisRateLimiter(client, { namespace }),
  countersOf: async (counterKey) => (await scanKeys(client, `${namespace}{${counterKey}}:`)).length,
}));

describe('RedisRateLimiter and a deleted key on a real Redis', () => {
  it('keeps the quota that never refills, without a TTL, after the key is deleted', async () => {
    const quota = { limit: 10 };
    const limiter = new RedisRateLimiter(client, { namespace });
    const { service } = makeService({ rateLimiter: limiter });
    const { apiKey } = await service.issue({ ownerId: 'acct-ttl', name: 'k', policy: { quota } });
    await limiter.consume(apiKey.id, { rateLimits: [], quota, cost: 3 });
    const key = `${namespace}{${apiKey.id}}:q:0`;
    await service.delete(apiKey.id);
    expect(await client.pTTL(key)).toBe(-1);
    expect(await client.hGet(key, 'u')).toBe('3');
  });
});
