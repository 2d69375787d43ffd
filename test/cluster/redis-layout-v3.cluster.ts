import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from 'nestjs-api-auth';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord, runBackendConformance } from 'nestjs-api-auth/testing';
import { storeLegacyRecordV3 } from '../fixtures/redis-layout-v3.js';
import { connectCluster, connectNode, masterPortOf, masterPorts, type TestCluster } from './cluster.fixture.js';

const runner = { describe, it, beforeAll, afterAll };

// Layout 3 with an UNTAGGED namespace: keys spread over every slot of the cluster.
let cluster: TestCluster;
for (const [label, options] of [
  ['RedisBackend layout 3 on a real 3+3 Redis Cluster (untagged namespace)', {}],
  ['RedisBackend layout 3 on a real 3+3 Redis Cluster (pageSize 2, expireRecords, recordEncoding 2)', { pageSize: 2, expireRecords: true, recordEncoding: 2 }],
  ['RedisBackend layout 3 on a real 3+3 Redis Cluster (recordEncoding 3)', { recordEncoding: 3 }],
] as const) {
  runBackendConformance(label, runner, {
    create: async () => {
      cluster = await connectCluster();
      return new RedisBackend(cluster, { namespace: `test-rb3-${randomBytes(6).toString('hex')}:`, ...options });
    },
    destroy: () => void cluster.destroy(),
    // Each command routed by its own key: the four keys are in four slots.
    storeLegacyRecord: (backend, record) =>
      storeLegacyRecordV3({ sendCommand: (args) => cluster.sendCommand(args[1], false, args) }, backend.keyPrefix, record),
  });
}

describe('RedisBackend layout 3 spreads records over the cluster', () => {
  it('puts the records of different keys in different slots, on every master', async () => {
    const client = await connectCluster();
    const backend = new RedisBackend(client, { namespace: `test-rb3s-${randomBytes(6).toString('hex')}:` });
    expect(backend.layoutVersion).toBe(3);
    try {
      const records = Array.from({ length: 60 }, () => makeApiKeyRecord({ ownerId: `owner-${randomBytes(4).toString('hex')}` }));
      await Promise.all(records.map((r) => backend.create(r)));
      const node = await connectNode((await masterPorts())[0]!);
      const slots = new Set<number>();
      const perMaster = new Map<number, number>();
      try {
        for (const r of records) {
          const key = `${backend.keyPrefix}{h:${r.keyHash}}`;
          slots.add(Number(await node.sendCommand(['CLUSTER', 'KEYSLOT', key])));
          const master = await masterPortOf(key);
          perMaster.set(master, (perMaster.get(master) ?? 0) + 1);
          // The record really is on that master, found with a plain GET there.
          const there = await connectNode(master);
          expect(await there.sendCommand(['EXISTS', key])).toBe(1);
          there.destroy();
        }
      } finally {
        node.destroy();
      }
      expect(slots.size).toBeGreaterThan(50);
      expect([...perMaster.keys()].sort()).toEqual((await masterPorts()).sort());
      for (const count of perMaster.values()) expect(count).toBeGreaterThan(5);
      for (const r of records) expect((await backend.getByHash(r.keyHash))?.id).toBe(r.id);
      await Promise.all(records.map((r) => backend.delete(r.id)));
    } finally {
      client.destroy();
    }
  });
});

describe('RedisBackend.migrateFromLayout2 on a cluster', () => {
  it('copies a hash-tagged layout-2 namespace into an untagged layout-3 one; a rerun writes nothing', async () => {
    const client = await connectCluster();
    const tag = `test-rb3m-${randomBytes(6).toString('hex')}`;
    try {
      const v2 = new RedisBackend(client, { namespace: `{${tag}}:` });
      const records = Array.from({ length: 12 }, (_, i) => makeApiKeyRecord({ ownerId: `o${i % 3}` }));
      for (const r of records) await v2.create(r);
      const v3 = new RedisBackend(client, { namespace: `${tag}:` });
      expect(await v3.migrateFromLayout2({ namespace: `{${tag}}:`, batchSize: 5 })).toMatchObject({ scanned: 12, copied: 12, conflicts: 0 });
      expect(await v3.migrateFromLayout2({ namespace: `{${tag}}:` })).toMatchObject({ scanned: 12, copied: 0, unchanged: 12 });
      for (const owner of ['o0', 'o1', 'o2']) {
        const list = async (b: RedisBackend) => {
          const out = [];
          for await (const r of b.listByOwner(owner)) out.push(r);
          return out;
        };
        expect(await list(v3)).toEqual(await list(v2));
      }
      for (const r of records) expect(await v3.getByHash(r.keyHash)).toEqual(r);
      for (const r of records) {
        await v2.delete(r.id);
        await v3.delete(r.id);
      }
    } finally {
      client.destroy();
    }
  });
});

describe('RedisBackend layout 3 option waitForReplicas on a cluster (one replica per master)', () => {
  it('waits after each step on the shard it wrote: one replica acknowledges, two never can', async () => {
    const client = await connectCluster();
    const namespace = `test-rb3w-${randomBytes(6).toString('hex')}:`;
    try {
      const one = new RedisBackend(client, { namespace, waitForReplicas: { replicas: 1, timeoutMs: 2_000 } });
      const record = makeApiKeyRecord();
      await one.create(record);
      await one.update(record.id, { revokedAt: new Date(), updatedAt: new Date() });
      await one.delete(record.id);
      expect(await one.getById(record.id)).toBeNull();

      const two = new RedisBackend(client, { namespace, waitForReplicas: { replicas: 2, timeoutMs: 50 } });
      await expect(two.create(makeApiKeyRecord())).rejects.toBeInstanceOf(BackendUnavailableError);
    } finally {
      client.destroy();
    }
  });
});
