import { randomBytes } from 'node:crypto';
import KeyvRedis from '@keyv/redis';
import { createCache, KeyvAdapter, type Cache } from 'cache-manager';
import { redisClusterInsStore } from 'cache-manager-redis-yet';
import { Keyv } from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService, MemoryBackend } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { createRedisTwoTierBackend, type RedisTwoTierBackend } from 'nestjs-api-auth/redis';
import { CountingBackend } from '../fixtures/counting.backend.js';
import { expectUpdatesAndDeletesPropagate } from '../fixtures/propagation.js';
import { pollUntil } from '../fixtures/wait-for.js';
import { connectCluster, connectNode, masterPorts, type TestCluster } from './cluster.fixture.js';

/** How a user puts cache-manager on a cluster with each Redis store. */
const VARIANTS: { name: string; cache(cluster: TestCluster, namespace: string): Cache }[] = [
  {
    name: '@keyv/redis',
    cache: (cluster, namespace) =>
      createCache({ stores: [new Keyv({ store: new KeyvRedis(cluster as never), namespace })] }),
  },
  {
    name: 'cache-manager-redis-yet (redisClusterInsStore through KeyvAdapter)',
    cache: (cluster, namespace) =>
      createCache({ stores: [new Keyv({ store: new KeyvAdapter(redisClusterInsStore(cluster as never, { rootNodes: [] })), namespace })] }),
  },
];

/** One instance: a cluster client for the cache and the bus, the cached provider, a service. */
interface Instance {
  cluster: TestCluster;
  backend: RedisTwoTierBackend;
  service: ApiKeyService;
}

/** Resolves once `to` has received a barrier `from` publishes now, so every invalidation `from` sent before. */
async function heardBy(from: Instance, to: Instance): Promise<void> {
  const barrier = `barrier-${randomBytes(6).toString('hex')}`;
  let heard = false;
  const off = to.backend.invalidationBus.subscribe((message) => {
    if (message.ids?.includes(barrier)) heard = true;
  });
  try {
    await from.backend.invalidationBus.publish({ ids: [barrier] });
    await pollUntil(() => heard, 'the other instance hearing the barrier');
  } finally {
    off();
  }
}

for (const variant of VARIANTS) {
  describe(`cached provider on a real 3+3 Redis Cluster, cache-manager over ${variant.name}`, () => {
    const namespace = `test-ccp-${randomBytes(6).toString('hex')}`;
    const primary = new CountingBackend(new MemoryBackend());
    let one: Instance;
    let two: Instance;

    async function start(): Promise<Instance> {
      const cluster = await connectCluster();
      // Keyv's namespace differs from the cache's: Keyv 5's `get`/`set` leave a key that
      // already starts with `<namespace>:` as it is, its `getMany` prefixes it again, so
      // with equal names every multi-key read missed here.
      const cache = variant.cache(cluster, `${namespace}-kv`);
      // An L1 TTL beyond the test: only an invalidation message can make an instance forget a key.
      const backend = await createRedisTwoTierBackend({ redis: cluster, cache, primary, ttl: 60_000, namespace, l1: { ttl: 600_000 } });
      const service = new ApiKeyService(resolveApiAuthOptions({ prefix: 'ccp_', trackUsage: false, backend }));
      return { cluster, backend, service };
    }

    beforeAll(async () => {
      one = await start();
      two = await start();
    });
    afterAll(async () => {
      for (const instance of [one, two]) {
        await instance?.backend.close();
        instance?.cluster.destroy();
      }
    });

    it('serves the second instance from the shared cache, whose entries are spread over the masters', async () => {
      const keys: string[] = [];
      for (let i = 0; i < 12; i++) keys.push((await one.service.issue({ ownerId: 'o', name: `k${i}` })).key);
      for (const key of keys) expect((await one.service.authenticate(key)).ok).toBe(true);
      const lookups = primary.calls('getByHash');
      for (const key of keys) expect((await two.service.authenticate(key)).ok).toBe(true);
      // Every lookup of instance two was answered by the Redis cache, none by the primary.
      expect(primary.calls('getByHash')).toBe(lookups);

      let holding = 0;
      for (const port of await masterPorts()) {
        const node = await connectNode(port);
        const [, found] = (await node.sendCommand(['SCAN', '0', 'MATCH', `*${namespace}*`, 'COUNT', '10000'])) as [string, string[]];
        node.destroy();
        if (found.length > 0) holding++;
      }
      expect(holding).toBeGreaterThan(1);
    });

    it('carries updates and deletes to the other instance', async () => {
      await expectUpdatesAndDeletesPropagate(one.service, two.service);
    });

    it('a revoke on one instance is refused by the other once it has heard it', async () => {
      const { key, apiKey } = await one.service.issue({ ownerId: 'o', name: 'r' });
      expect((await two.service.authenticate(key)).ok).toBe(true);
      await one.service.revoke(apiKey.id);
      // Decided by order, not by how soon: a barrier published behind the revoke's
      // invalidation (same publisher, one channel) reaches instance two after it.
      await heardBy(one, two);
      expect(await two.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
    });
  });
}
