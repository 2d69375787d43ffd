import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBackend, type RedisCommandClient } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';

/**
 * A client that counts what the backend sends: commands, and round trips (a round
 * starts when a command is sent while none is in flight, so commands sent together,
 * in parallel, count once).
 */
function counting(client: RedisCommandClient) {
  const stats = { commands: 0, rounds: 0, names: [] as string[] };
  let inFlight = 0;
  const wrapped: RedisCommandClient = {
    sendCommand: async (args) => {
      stats.commands++;
      stats.names.push(args[0]!);
      if (inFlight === 0) stats.rounds++;
      inFlight++;
      try {
        return await client.sendCommand(args);
      } finally {
        inFlight--;
      }
    },
  };
  return {
    stats,
    client: wrapped,
    reset: () => {
      stats.commands = 0;
      stats.rounds = 0;
      stats.names = [];
    },
  };
}

type Row = Record<string, [commands: number, rounds: number]>;

async function measure(layout: 2 | 3, client: RedisCommandClient, namespace: string): Promise<Row> {
  const counter = counting(client);
  const backend = new RedisBackend(counter.client, { namespace, layout });
  const row: Row = {};
  const run = async (name: string, fn: () => Promise<unknown>) => {
    counter.reset();
    await fn();
    row[name] = [counter.stats.commands, counter.stats.rounds];
  };
  const ownerId = `owner-${layout}`;
  // Warm the script cache, so no NOSCRIPT retry is counted.
  const warm = makeApiKeyRecord({ ownerId });
  await backend.create(warm);
  await backend.update(warm.id, { name: 'w', revokedAt: new Date(), expiresAt: new Date(Date.now() + 60_000), updatedAt: new Date() });
  await backend.recordUsage(warm.id, new Date(), new Date());
  for await (const _ of backend.listByOwner(ownerId));
  const toHash = makeApiKeyRecord().keyHash;
  await backend.replaceHash(warm.id, warm.keyHash, toHash);
  await backend.purge({ revokedBefore: new Date(0), limit: 1 });
  await backend.delete(warm.id);

  const records = Array.from({ length: 10 }, () => makeApiKeyRecord({ ownerId }));
  for (const r of records.slice(1)) await backend.create(r);
  const record = records[0]!;
  await run('create', () => backend.create(record));
  await run('getByHash', () => backend.getByHash(record.keyHash));
  await run('getById', () => backend.getById(record.id));
  await run('update (rename)', () => backend.update(record.id, { name: 'renamed', updatedAt: new Date() }));
  await run('update (revoke)', () => backend.update(record.id, { revokedAt: new Date(), updatedAt: new Date() }));
  await run('recordUsage', () => backend.recordUsage(record.id, new Date(), new Date()));
  await run('listByOwner (one page of 10)', async () => {
    for await (const _ of backend.listByOwner(ownerId));
  });
  await run('countByOwner', () => backend.countByOwner(ownerId));
  await run('replaceHash', () => backend.replaceHash(record.id, record.keyHash, makeApiKeyRecord().keyHash));
  await run('delete', () => backend.delete(record.id));
  return row;
}

describe('RedisBackend round trips per operation, layout 2 and 3 (the table in docs/redis.md)', () => {
  let client: Awaited<ReturnType<typeof connectRedis>>;
  const namespace = uniqueNamespace('redis-round-trips');
  beforeAll(async () => {
    client = await connectRedis();
  });
  afterAll(async () => {
    await deleteNamespace(client, namespace);
    await client.close();
  });

  it('verifies with one GET in both layouts; every other operation costs what the docs say', async () => {
    const v2 = await measure(2, client, `${namespace}a:`);
    const v3 = await measure(3, client, `${namespace}b:`);
    const table = Object.keys(v2).map((op) => `| ${op} | ${v2[op]![0]} / ${v2[op]![1]} | ${v3[op]![0]} / ${v3[op]![1]} |`);
    expect({ v2, v3 }, table.join('\n')).toEqual({
      v2: {
        create: [1, 1],
        getByHash: [1, 1],
        getById: [1, 1],
        'update (rename)': [1, 1],
        'update (revoke)': [1, 1],
        recordUsage: [1, 1],
        'listByOwner (one page of 10)': [1, 1],
        countByOwner: [1, 1],
        replaceHash: [1, 1],
        delete: [1, 1],
      },
      v3: {
        // pointer claim · 2 entries + 2 purge-index files · record · pointer + 2 entries settled
        create: [9, 4],
        getByHash: [1, 1],
        getById: [2, 2],
        'update (rename)': [2, 2],
        // pointer · purge-index lower bound · record · purge index filed exactly (2)
        'update (revoke)': [5, 4],
        recordUsage: [2, 2],
        // the page script · 10 pointers · 10 records
        'listByOwner (one page of 10)': [21, 3],
        countByOwner: [1, 1],
        // pointer · the new hash's holder · pointer moving · freeze · place · drop · pointer
        replaceHash: [7, 7],
        // pointer · record · 2 entries + 2 purge-index drops + pointer
        delete: [7, 3],
      },
    });
  });

  it('sends exactly one GET for a verification in layout 3, for a key found and one not found', async () => {
    const counter = counting(client);
    const backend = new RedisBackend(counter.client, { namespace: `${namespace}c:`, layout: 3 });
    const record = makeApiKeyRecord();
    await backend.create(record);
    counter.reset();
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    expect(await backend.getByHash(makeApiKeyRecord().keyHash)).toBeNull();
    expect(counter.stats.names).toEqual(['GET', 'GET']);
    await backend.delete(record.id);
  });
});
