import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisRateLimiter } from 'nestjs-api-auth/redis';
import { describeCounterRelease } from '../fixtures/counter-release.suite.js';
import { connectRedis, deleteNamespace, scanKeys, startRedisProxy, uniqueNamespace } from '../fixtures/redis.js';
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

describe('RedisRateLimiter.deleteCounters on a real Redis', () => {
  const quota = { limit: 10 };

  it('removes the quota that never refills, the one counter Redis would keep forever', async () => {
    const limiter = new RedisRateLimiter(client, { namespace });
    const { service } = makeService({ rateLimiter: limiter });
    const { apiKey } = await service.issue({ ownerId: 'acct-ttl', name: 'k', policy: { quota } });
    await limiter.consume(apiKey.id, { rateLimits: [], quota, cost: 1 });
    const key = `${namespace}{${apiKey.id}}:q:0`;
    expect(await client.pTTL(key)).toBe(-1);
    await service.delete(apiKey.id);
    expect(await client.exists(key)).toBe(0);
  });

  it('deletes the key and logs one warning when Redis is down', async () => {
    const proxy = await startRedisProxy();
    const viaProxy = await connectRedis({ url: proxy.url, disableOfflineQueue: true });
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const limiter = new RedisRateLimiter(viaProxy, { namespace, commandTimeoutMs: 200 });
      const { service, backend } = makeService({ rateLimiter: limiter });
      const { apiKey } = await service.issue({ ownerId: 'acct-down', name: 'k', policy: { quota } });
      expect((await limiter.consume(apiKey.id, { rateLimits: [], quota, cost: 1 })).allowed).toBe(true);
      await proxy.stop();
      const started = Date.now();
      await expect(service.delete(apiKey.id)).resolves.toBeUndefined();
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(await backend.getById(apiKey.id)).toBeNull();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toMatch(/could not be removed.*Redis rate limiter could not answer/);
      // The counters are still there, on the Redis the proxy fronted.
      expect(await client.exists(`${namespace}{${apiKey.id}}:q:0`)).toBe(1);
    } finally {
      warn.mockRestore();
      viaProxy.destroy();
      await proxy.stop();
    }
  });
});
