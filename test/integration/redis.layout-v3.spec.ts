import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord, runBackendConformance } from 'nestjs-api-auth/testing';
import { storeLegacyRecordV3 } from '../fixtures/redis-layout-v3.js';
import { connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;
const runner = { describe, it, beforeAll, afterAll };

async function isolated(label: string, options: ConstructorParameters<typeof RedisBackend>[1] = {}, clientOptions: Parameters<typeof connectRedis>[0] = {}) {
  const client = await connectRedis(clientOptions);
  const namespace = uniqueNamespace(label);
  const backend = new RedisBackend(client, { ...options, namespace, layout: 3 });
  return {
    client,
    namespace,
    backend,
    done: async () => {
      await deleteNamespace(client, namespace);
      await client.close();
    },
  };
}

for (const [label, options, clientOptions] of [
  ['RedisBackend layout 3', {}, {}],
  ['RedisBackend layout 3 (pageSize 2, expireRecords)', { pageSize: 2, expireRecords: true }, {}],
  ['RedisBackend layout 3 (RESP3 client)', {}, { RESP: 3 }],
  ['RedisBackend layout 3 (recordEncoding 2)', { recordEncoding: 2 }, {}],
] as const) {
  let env: Awaited<ReturnType<typeof isolated>>;
  runBackendConformance(label, runner, {
    create: async () => (env = await isolated('redis-v3', options, clientOptions)).backend,
    destroy: () => env.done(),
    storeLegacyRecord: (backend, record) => storeLegacyRecordV3(env.client, backend.keyPrefix, record),
  });
}

describe('RedisBackend layout 3 keys', () => {
  let client: Client;
  beforeAll(async () => {
    client = await connectRedis();
  });
  afterAll(async () => {
    await client.close();
  });

  it('keeps its keys under <namespace>v3: and leaves none behind after delete', async () => {
    const namespace = uniqueNamespace('redis-v3-keys');
    const backend = new RedisBackend(client, { namespace, layout: 3 });
    expect(backend.keyPrefix).toBe(`${namespace}v3:`);
    expect(backend.layoutVersion).toBe(3);
    try {
      const records = Array.from({ length: 6 }, (_, i) =>
        makeApiKeyRecord({ ownerId: `o${i % 2}`, issuedById: i % 3 ? null : 'issuer', expiresAt: new Date(Date.now() + 3_600_000) }),
      );
      await Promise.all(records.map((r) => backend.create(r)));
      await backend.update(records[0]!.id, { revokedAt: new Date(), updatedAt: new Date() });
      const keys = await scanKeys(client, namespace);
      expect(keys.every((k) => k.startsWith(`${namespace}v3:`))).toBe(true);
      await Promise.all(records.map((r) => backend.delete(r.id)));
      // The purge index's version hashes are gone with their last entry.
      expect(await scanKeys(client, namespace)).toEqual([]);
    } finally {
      await deleteNamespace(client, namespace);
    }
  });

  it('refuses a namespace with a brace, and a bad layout, by name', () => {
    expect(() => new RedisBackend(client, { namespace: '{api-auth}:', layout: 3 })).toThrow(/layout 3 the option "namespace" must not contain/);
    expect(() => new RedisBackend(client, { layout: 4 as 3 })).toThrow(/option "layout" must be 2 or 3/);
    expect(new RedisBackend(client).layoutVersion).toBe(2);
  });
});
