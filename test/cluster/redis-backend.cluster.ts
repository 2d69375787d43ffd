import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError, type ApiKey } from 'nestjs-api-auth';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord, runBackendConformance } from 'nestjs-api-auth/testing';
import { ownerEntry } from '../../lib/redis/redis-record.codec.js';
import { encodeV1Record } from '../fixtures/redis-record-v1.js';
import { connectCluster, type TestCluster } from './cluster.fixture.js';

const runner = { describe, it, beforeAll, afterAll };

// Single-slot mode: the hash tag puts every key of the namespace in one slot.
let cluster: TestCluster;
for (const [label, recordEncoding] of [
  ['RedisBackend on a real 3+3 Redis Cluster (hash-tagged namespace)', 1],
  ['RedisBackend on a real 3+3 Redis Cluster (hash-tagged namespace, recordEncoding 2)', 2],
  ['RedisBackend on a real 3+3 Redis Cluster (hash-tagged namespace, recordEncoding 3)', 3],
] as const) {
  runBackendConformance(label, runner, {
    create: async () => {
      cluster = await connectCluster();
      return new RedisBackend(cluster, { namespace: `{test-rb-${randomBytes(6).toString('hex')}}:`, recordEncoding });
    },
    destroy: () => void cluster.destroy(),
    storeLegacyRecord: (backend, record) => storeLegacyRecord(backend.keyPrefix, record),
  });
}

/** Writes `record` as a RedisBackend from before `version` and `issuedById` stored it (see redis.backend.spec). */
async function storeLegacyRecord(prefix: string, record: Omit<ApiKey, 'version' | 'issuedById' | 'disabledAt'>): Promise<void> {
  const hashKey = `${prefix}hash:${record.keyHash}`;
  await cluster.sendCommand(hashKey, false, ['SET', hashKey, encodeV1Record({ ...record, version: 1, issuedById: null, disabledAt: null }, { beforeVersions: true })]);
  await cluster.sendCommand(`${prefix}id:${record.id}`, false, ['SET', `${prefix}id:${record.id}`, record.keyHash]);
  const ownerKey = `${prefix}owner:${record.ownerId}`;
  await cluster.sendCommand(ownerKey, false, ['ZADD', ownerKey, '0', ownerEntry(record.createdAt, record.id)]);
}

describe('RedisBackend given a cluster client', () => {
  it('takes layout 3 for a namespace without a hash tag; layout 2 there, or a brace in layout 3, is refused by name', async () => {
    const client = await connectCluster();
    try {
      expect(new RedisBackend(client, { namespace: 'api-auth:' }).layoutVersion).toBe(3);
      expect(() => new RedisBackend(client, { namespace: 'api-auth:', layout: 2 })).toThrow(/layout 2 on Redis Cluster needs a hash tag.*layout 3/);
      for (const namespace of ['{}api-auth:', 'api-auth}{:']) {
        expect(() => new RedisBackend(client, { namespace })).toThrow(/must not contain "\{" or "\}"/);
      }
      expect(new RedisBackend(client, { namespace: '{api-auth}:' }).layoutVersion).toBe(2);
    } finally {
      client.destroy();
    }
  });
});

describe('RedisBackend option waitForReplicas on a cluster (one replica per master)', () => {
  it('waits for the slot master\'s replica: one acknowledges, two never can', async () => {
    const client = await connectCluster();
    const namespace = `{test-rbw-${randomBytes(6).toString('hex')}}:`;
    try {
      const one = new RedisBackend(client, { namespace, waitForReplicas: { replicas: 1, timeoutMs: 2_000 } });
      const record = makeApiKeyRecord();
      await one.create(record);
      await one.delete(record.id);
      expect(await one.getById(record.id)).toBeNull();

      const two = new RedisBackend(client, { namespace, waitForReplicas: { replicas: 2, timeoutMs: 50 } });
      const other = makeApiKeyRecord();
      await expect(two.create(other)).rejects.toBeInstanceOf(BackendUnavailableError);
      expect((await one.getByHash(other.keyHash))?.id).toBe(other.id);
    } finally {
      client.destroy();
    }
  });
});
