import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService, CachedBackend, KeyHasher, type ApiKeyInvalidation } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { startCachedInstance, type CachedInstance } from '../fixtures/cached-instance.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';

/**
 * Disable and enable reach every instance as a revoke does: through the invalidation
 * bus, not by waiting out a cache. Every L1 here holds keys for ten minutes, so only
 * the bus can make an instance see the change, and each check waits for the bus
 * message itself (ordering), never for a span of time.
 */
describe('disable and enable across two instances sharing Redis', () => {
  const namespace = uniqueNamespace('disable-propagation').replace(/:+$/, '');
  let redis: Awaited<ReturnType<typeof connectRedis>>;
  let one: CachedInstance;
  let two: CachedInstance;
  /** A third instance with the same ten-minute L1 and no bus: what the others would do without it. */
  let deaf: ApiKeyService;

  /**
   * Resolves once `instance`'s bus has delivered an invalidation naming an id (`id`, or
   * any when not given); its L1 applied it before, since its own handler came first.
   */
  function heard(instance: CachedInstance, id?: string): Promise<string[]> {
    return new Promise((resolve) => {
      const stop = instance.backend.invalidationBus.subscribe((message: ApiKeyInvalidation) => {
        const ids = message.ids ?? [];
        if (id === undefined ? ids.length > 0 : ids.includes(id)) {
          stop();
          resolve([...ids]);
        }
      });
    });
  }

  /** Issues on `one` and waits until `two` has heard of it, so nothing later drops `two`'s copy. */
  async function issueSeenByTwo() {
    const twoHeardCreate = heard(two);
    const issued = await one.service.issue({ ownerId: 'o', name: 'n' });
    expect(await twoHeardCreate).toEqual([issued.apiKey.id]);
    return { ...issued, hash: new KeyHasher().hash(issued.key) };
  }

  beforeAll(async () => {
    redis = await connectRedis({ disableOfflineQueue: true });
    const primary = new RedisBackend(redis, { namespace: `${namespace}:keys:` });
    const l1 = { ttl: 600_000, negativeTtl: 600_000 };
    one = await startCachedInstance(namespace, primary, { extra: { l1 } });
    two = await startCachedInstance(namespace, primary, { extra: { l1 } });
    deaf = new ApiKeyService(resolveApiAuthOptions({ prefix: 'cp_', trackUsage: false, backend: new CachedBackend(primary, l1) }));
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await deleteNamespace(redis, `${namespace}:`);
    await redis?.close();
  });

  it('a key disabled on one instance is refused by the other, which held it in its L1; enabling it reaches back', async () => {
    const { key, apiKey, hash } = await issueSeenByTwo();
    for (const service of [one.service, two.service, deaf]) expect((await service.authenticate(key)).ok).toBe(true);
    expect(two.backend.peekByHash(hash)?.record.id).toBe(apiKey.id);

    const twoHeardDisable = heard(two, apiKey.id);
    await one.service.disable(apiKey.id);
    // The writer's own L1 dropped the key before disable resolved.
    expect(await one.service.authenticate(key)).toEqual({ ok: false, code: 'disabled_api_key' });
    await twoHeardDisable;
    expect(await two.service.authenticate(key)).toEqual({ ok: false, code: 'disabled_api_key' });
    // Without the bus the same L1 still serves the key: the refusal above came from the message.
    expect((await deaf.authenticate(key)).ok).toBe(true);

    const oneHeardEnable = heard(one, apiKey.id);
    await two.service.enable(apiKey.id);
    expect((await two.service.authenticate(key)).ok).toBe(true);
    await oneHeardEnable;
    expect((await one.service.authenticate(key)).ok).toBe(true);
  });

  it('a disable that finds the key already disabled elsewhere drops this instance\'s copy before it resolves', async () => {
    const { key, apiKey, hash } = await issueSeenByTwo();
    expect((await two.service.authenticate(key)).ok).toBe(true);
    expect(two.backend.peekByHash(hash)?.record.id).toBe(apiKey.id);
    // Written behind both instances' backs: no message is sent.
    const primary = new RedisBackend(redis, { namespace: `${namespace}:keys:` });
    await primary.update(apiKey.id, { disabledAt: new Date(), updatedAt: new Date() });
    expect((await two.service.authenticate(key)).ok).toBe(true);
    // Disabling through two reads the key already disabled and writes nothing, yet two must not keep serving it.
    await two.service.disable(apiKey.id);
    expect(await two.service.authenticate(key)).toEqual({ ok: false, code: 'disabled_api_key' });
  });
});
