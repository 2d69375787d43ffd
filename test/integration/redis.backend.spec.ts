import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BackendUnavailableError, type ApiKey } from 'nestjs-api-auth';
import { RedisBackend, type RedisCommandClient } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord, runBackendConformance } from 'nestjs-api-auth/testing';
import { settlesWithoutTimers, track } from '../fixtures/settled.js';
import { pollUntil } from '../fixtures/wait-for.js';
import {
  closedPort,
  connectRedis,
  deleteNamespace,
  scanKeys,
  startRedisProxy,
  uniqueNamespace,
} from '../fixtures/redis.js';
import { ownerEntry } from '../../lib/redis/redis-record.codec.js';
import { encodeV1Record } from '../fixtures/redis-record-v1.js';
import { LOOK_UP_BY_HASH, type CallbackLookup } from '../../lib/verification/lookup-callbacks.js';

/** Writes `record` as a RedisBackend from before `version` and `issuedById` stored it. */
async function storeLegacyRecord(client: Client, prefix: string, record: Omit<ApiKey, 'version' | 'issuedById' | 'disabledAt'>): Promise<void> {
  const stored = encodeV1Record({ ...record, version: 1, issuedById: null, disabledAt: null }, { beforeVersions: true });
  await client.sendCommand(['SET', `${prefix}hash:${record.keyHash}`, stored]);
  await client.sendCommand(['SET', `${prefix}id:${record.id}`, record.keyHash]);
  await client.sendCommand(['ZADD', `${prefix}owner:${record.ownerId}`, '0', ownerEntry(record.createdAt, record.id)]);
}

type Client = Awaited<ReturnType<typeof connectRedis>>;
const runner = { describe, it, beforeAll, afterAll };

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const byCursor = (a: ApiKey, b: ApiKey) =>
  a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** A client that remembers every command it sends, to see what the backend asks Redis. */
function recording(client: RedisCommandClient) {
  const calls: string[][] = [];
  const wrapped: RedisCommandClient = {
    sendCommand: (args) => {
      calls.push(args);
      return client.sendCommand(args);
    },
  };
  return { calls, client: wrapped };
}

/** A backend in its own namespace on its own connection; `done()` deletes the namespace and disconnects. */
async function isolated(
  label: string,
  options: ConstructorParameters<typeof RedisBackend>[1] = {},
  clientOptions: Parameters<typeof connectRedis>[0] = {},
) {
  const client = await connectRedis(clientOptions);
  const namespace = uniqueNamespace(label);
  const backend = new RedisBackend(client, { ...options, namespace });
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
  ['RedisBackend', {}, {}],
  // Small pages make the conformance listing cross page boundaries; expiring records
  // must change nothing a caller can observe before expiresAt.
  ['RedisBackend (pageSize 2, expireRecords)', { pageSize: 2, expireRecords: true }, {}],
  // A RESP3 connection decodes replies into other types; nothing may rely on RESP2's.
  ['RedisBackend (RESP3 client)', {}, { RESP: 3 }],
  // Record encoding 2 (cheaper to read); the default, 1, is what earlier releases read.
  ['RedisBackend (recordEncoding 2)', { recordEncoding: 2 }, {}],
  // Record encoding 3 (cheapest to read), also over RESP3.
  ['RedisBackend (recordEncoding 3)', { recordEncoding: 3 }, {}],
  ['RedisBackend (recordEncoding 3, RESP3 client)', { recordEncoding: 3 }, { RESP: 3 }],
] as const) {
  let env: Awaited<ReturnType<typeof isolated>>;
  runBackendConformance(label, runner, {
    create: async () => (env = await isolated('redis-backend', options, clientOptions)).backend,
    destroy: () => env.done(),
    storeLegacyRecord: (backend, record) => storeLegacyRecord(env.client, backend.keyPrefix, record),
  });
}

describe('RedisBackend against real Redis', () => {
  let env: Awaited<ReturnType<typeof isolated>>;
  let second: Client;

  beforeAll(async () => {
    env = await isolated('redis-backend');
    second = await connectRedis();
  });
  afterAll(async () => {
    await env.done();
    await second.close();
  });

  it('never un-revokes: a revoke racing 100 usage writes and a stale update, over two connections, 20 rounds', async () => {
    // The usage writes and the stale writer use another connection, so their commands
    // really interleave with the revoke at the server.
    const other = new RedisBackend(second, { namespace: env.namespace });
    for (let round = 0; round < 20; round++) {
      const record = makeApiKeyRecord();
      await env.backend.create(record);
      const now = Date.now();
      const revokedAt = new Date(now);
      const usage = Array.from({ length: 100 }, (_, i) =>
        other.recordUsage(record.id, new Date(now + i), new Date(now + i)),
      );
      const [stale] = await Promise.all([
        other.update(record.id, { name: 'stale writer', revokedAt: null, updatedAt: new Date() }),
        ...usage.slice(0, 50),
        env.backend.update(record.id, { revokedAt, updatedAt: revokedAt }),
        ...usage.slice(50),
      ]);
      const stored = await env.backend.getByHash(record.keyHash);
      expect(stored?.revokedAt?.getTime(), `round ${round}`).toBe(now);
      // When the stale writer landed last (version 3), its own result shows the revocation kept.
      if (stale.version === 3) expect(stale.revokedAt?.getTime()).toBe(now);
      expect(stored?.name).toBe('stale writer');
      expect(stored?.lastUsedAt?.getTime()).toBeGreaterThanOrEqual(now);
      expect(stored?.lastUsedAt?.getTime()).toBeLessThanOrEqual(now + 99);
    }
  });

  it('keeps usage writes from bringing back a deleted record', async () => {
    const record = makeApiKeyRecord();
    await env.backend.create(record);
    const usage = new RedisBackend(second, { namespace: env.namespace });
    await Promise.all([
      ...Array.from({ length: 25 }, (_, i) => usage.recordUsage(record.id, new Date(Date.now() + i), new Date(Date.now() + i))),
      env.backend.delete(record.id),
      ...Array.from({ length: 25 }, (_, i) => usage.recordUsage(record.id, new Date(Date.now() + i), new Date(Date.now() + i))),
    ]);
    expect(await env.backend.getById(record.id)).toBeNull();
    expect(await scanKeys(env.client, `${env.backend.keyPrefix}id:${record.id}`)).toEqual([]);
    expect(await scanKeys(env.client, `${env.backend.keyPrefix}hash:${record.keyHash}`)).toEqual([]);
  });

  it('delete leaves no key at all in the namespace, whatever the records went through', async () => {
    const own = await isolated('redis-backend-delete');
    try {
      const owners = ['alice', 'bob', 'carol'];
      const records = Array.from({ length: 30 }, (_, i) =>
        makeApiKeyRecord({
          ownerId: owners[i % 3],
          expiresAt: i % 2 ? new Date(Date.now() + 3_600_000) : null,
          rotatedFromId: i % 5 ? null : `rotated-${i}`,
        }),
      );
      await Promise.all(records.map((r) => own.backend.create(r)));
      // Records, id index entries, owner sets, the index across owners, and the purge index
      // of the keys that expire.
      expect((await scanKeys(own.client, own.namespace)).length).toBe(30 + 30 + 3 + 1 + 1);
      for (const [i, r] of records.entries()) {
        await own.backend.recordUsage(r.id, new Date(), new Date());
        // An update keeps the key in its owner's list.
        if (i % 4 === 0) await own.backend.update(r.id, { revokedAt: new Date(), updatedAt: new Date() });
      }
      for (const owner of owners) expect(await own.backend.countByOwner(owner)).toBe(10);
      expect((await collect(own.backend.listByOwner('alice'))).every((r) => r.ownerId === 'alice')).toBe(true);
      await Promise.all(records.map((r) => own.backend.delete(r.id)));
      expect(await scanKeys(own.client, own.namespace)).toEqual([]);
    } finally {
      await own.done();
    }
  });

  it('streams 5,000 keys of one owner page by page (keyset), never all at once', async () => {
    const { calls, client } = recording(env.client);
    const pageSize = 256;
    const backend = new RedisBackend(client, { namespace: env.namespace, pageSize });
    const ownerId = `owner-many-${Date.now()}`;
    const base = Date.now() - 100_000;
    // Many keys share a createdAt, so the id tie-break is exercised across pages.
    const records = Array.from({ length: 5_000 }, (_, i) =>
      makeApiKeyRecord({ ownerId, createdAt: new Date(base + (i % 37) * 1_000) }),
    );
    for (let i = 0; i < records.length; i += 1_000) {
      await Promise.all(records.slice(i, i + 1_000).map((r) => env.backend.create(r)));
    }
    const expected = [...records].sort(byCursor).map((r) => r.id);
    const ownerKey = `${backend.keyPrefix}owner:${ownerId}`;
    const pageCalls = () => calls.filter((args) => args[0] === 'EVALSHA' && args[3] === ownerKey);
    const requested = (args: string[]) => Number(args[6]); // EVALSHA sha 1 key prefix bound COUNT owner

    // A consumer that stops early costs one page.
    const firstTen: string[] = [];
    for await (const record of backend.listByOwner(ownerId)) {
      firstTen.push(record.id);
      if (firstTen.length === 10) break;
    }
    expect(firstTen).toEqual(expected.slice(0, 10));
    expect(pageCalls()).toHaveLength(1);

    calls.length = 0;
    const all = (await collect(backend.listByOwner(ownerId))).map((r) => r.id);
    expect(all).toEqual(expected);
    expect(pageCalls()).toHaveLength(Math.ceil(5_000 / pageSize));
    expect(pageCalls().every((args) => requested(args) === pageSize)).toBe(true);

    calls.length = 0;
    const after = records.find((r) => r.id === expected[999])!;
    const slice = await collect(backend.listByOwner(ownerId, { after, limit: 300 }));
    expect(slice.map((r) => r.id)).toEqual(expected.slice(1_000, 1_300));
    // The last page asks only for what the limit still needs.
    expect(pageCalls().map(requested)).toEqual([256, 44]);

    expect(await backend.countByOwner(ownerId)).toBe(5_000);
    await Promise.all(records.map((r) => env.backend.delete(r.id)));
    expect(await backend.countByOwner(ownerId)).toBe(0);
  }, 60_000);

  it('runs its scripts again after the server forgot them (NOSCRIPT falls back to EVAL)', async () => {
    const { calls, client } = recording(env.client);
    const backend = new RedisBackend(client, { namespace: env.namespace });
    const record = makeApiKeyRecord();
    await backend.create(record);
    await env.client.sendCommand(['SCRIPT', 'FLUSH']);
    calls.length = 0;
    expect((await backend.getById(record.id))?.id).toBe(record.id);
    expect(calls.map((args) => args[0])).toEqual(['EVALSHA', 'EVAL']);
    calls.length = 0;
    expect((await backend.getById(record.id))?.id).toBe(record.id);
    expect(calls.map((args) => args[0])).toEqual(['EVALSHA']);
  });

  it('verifies with one GET and no script: the whole record is filed under its key hash', async () => {
    const { calls, client } = recording(env.client);
    const backend = new RedisBackend(client, { namespace: env.namespace });
    const record = makeApiKeyRecord({ scopes: ['read', 'write'], metadata: { plan: 'pro', n: 1 }, policy: { rateLimits: [{ name: 'burst', limit: 5, windowMs: 1_000 }] } });
    await backend.create(record);
    calls.length = 0;
    expect(await backend.getByHash(record.keyHash)).toEqual(record);
    expect(calls).toEqual([['GET', `${backend.keyPrefix}hash:${record.keyHash}`]]);
    calls.length = 0;
    expect(await backend.getByHash('0'.repeat(64))).toBeNull();
    expect(calls).toHaveLength(1);
    // The verifier's lookup through callbacks: the same one GET, the same answers.
    calls.length = 0;
    expect(await lookUpByHash(backend, record.keyHash)).toEqual(record);
    expect(await lookUpByHash(backend, '0'.repeat(64))).toBeNull();
    expect(calls).toEqual([['GET', `${backend.keyPrefix}hash:${record.keyHash}`], ['GET', `${backend.keyPrefix}hash:${'0'.repeat(64)}`]]);
    await backend.delete(record.id);
  });

  it('answers BackendUnavailableError, quoting nothing stored, for a value it cannot read', async () => {
    const record = makeApiKeyRecord();
    const recordKey = `${env.backend.keyPrefix}hash:${record.keyHash}`;
    const idKey = `${env.backend.keyPrefix}id:${record.id}`;
    for (const value of [`{"keyHash":"${record.keyHash}"`, JSON.stringify([record.id, record.keyHash]), '[' + '"x",'.repeat(15) + '"x"]']) {
      await env.client.set(recordKey, value);
      await env.client.set(idKey, record.keyHash);
      for (const read of [() => env.backend.getByHash(record.keyHash), () => lookUpByHash(env.backend, record.keyHash), () => env.backend.getById(record.id)]) {
        const error = await read().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BackendUnavailableError);
        expect((error as Error).message).toMatch(/cannot read/);
        expect((error as Error).message).not.toContain(record.keyHash);
        expect((error as Error).message).not.toContain('"x"');
      }
    }
    await env.client.del([recordKey, idKey]);
  });

  it("keeps a key hash that Redis echoes in an error reply out of the error and its cause", async () => {
    // Redis 7 answers an unknown command with its first arguments quoted; a client (or a
    // proxy) that mangles the command name makes real Redis echo the key's record name.
    const echoing: RedisCommandClient = { sendCommand: ([name, ...rest]) => env.client.sendCommand([`X${name}`, ...rest]) };
    const backend = new RedisBackend(echoing, { namespace: env.namespace });
    const record = makeApiKeyRecord();
    const raw = await echoing.sendCommand(['GET', `${backend.keyPrefix}hash:${record.keyHash}`]).catch((e: unknown) => e);
    expect(String((raw as Error).message)).toContain(record.keyHash);
    for (const run of [() => backend.getByHash(record.keyHash), () => backend.create(record), () => backend.update(record.id, { name: 'x', updatedAt: new Date() })]) {
      const error = (await run().catch((e: unknown) => e)) as Error & { cause?: Error & { cause?: unknown } };
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(error.message).toMatch(/\(SimpleError\)/);
      expect(error.cause).toBeInstanceOf(Error);
      expect(error.cause!.name).toBe('SimpleError');
      expect(error.cause!.message).toMatch(/unknown command/);
      expect(error.cause!.cause).toBeUndefined();
      expect(JSON.stringify({ message: error.message, cause: error.cause!.message, stack: error.cause!.stack })).not.toContain(record.keyHash);
    }
  });

  it('stores records as ASCII, non-ASCII text escaped, through create, update and recordUsage', async () => {
    const name = 'café … 😀 ünï';
    const metadata = { team: 'Zürich ☕', emoji: '🚀' };
    const record = makeApiKeyRecord({ name, metadata, hint: 'live_…abcd' });
    const recordKey = `${env.backend.keyPrefix}hash:${record.keyHash}`;
    const ascii = /^[\x00-\x7f]*$/;
    await env.backend.create(record);
    expect(await env.client.get(recordKey)).toMatch(ascii);
    expect(await env.backend.getByHash(record.keyHash)).toMatchObject({ name, metadata, hint: 'live_…abcd' });

    const renamed = '名前 — naïve 👍';
    await env.backend.update(record.id, { name: renamed, updatedAt: new Date() });
    expect(await env.client.get(recordKey)).toMatch(ascii);
    const usedAt = new Date(Date.now() + 1_000);
    await env.backend.recordUsage(record.id, usedAt, usedAt);
    const raw = await env.client.get(recordKey);
    expect(raw).toMatch(ascii);
    expect(await env.backend.getByHash(record.keyHash)).toMatchObject({ name: renamed, metadata, hint: 'live_…abcd', lastUsedAt: usedAt });
    expect(await env.backend.getById(record.id)).toMatchObject({ name: renamed });
    await env.backend.delete(record.id);
  });

  it('still reads a record stored with raw UTF-8, as earlier versions wrote it, and escapes it on the next write', async () => {
    const record = makeApiKeyRecord({ name: 'café' });
    await env.backend.create(record);
    const recordKey = `${env.backend.keyPrefix}hash:${record.keyHash}`;
    const escaped = (await env.client.get(recordKey))!;
    await env.client.set(recordKey, escaped.replace('caf\\u00e9', 'café'));
    expect(await env.client.get(recordKey)).toContain('café');
    expect((await env.backend.getByHash(record.keyHash))?.name).toBe('café');
    const usedAt = new Date(Date.now() + 1_000);
    await env.backend.recordUsage(record.id, usedAt, usedAt);
    expect(await env.client.get(recordKey)).toContain('caf\\u00e9');
    expect((await env.backend.getByHash(record.keyHash))?.name).toBe('café');
    await env.backend.delete(record.id);
  });

  it('keeps a name with a lone UTF-16 surrogate updatable (stored as U+FFFD, as UTF-8 would)', async () => {
    const record = makeApiKeyRecord({ name: 'bad \ud800 name' });
    const created = await env.backend.create(record);
    expect(created.name).toBe('bad \ufffd name');
    expect(await env.backend.recordUsage(record.id, new Date(), new Date())).toBe(true);
    const updated = await env.backend.update(record.id, { name: 'still \udfff bad', updatedAt: new Date() });
    expect(updated.name).toBe('still \ufffd bad');
    expect((await env.backend.getByHash(record.keyHash))?.name).toBe('still \ufffd bad');
    await env.backend.delete(record.id);
  });

  it('rejects bad options and clients by name', () => {
    expect(() => new RedisBackend(env.client, { pageSize: 0 })).toThrow(/pageSize/);
    expect(() => new RedisBackend(env.client, { commandTimeoutMs: -1 })).toThrow(/commandTimeoutMs/);
    expect(() => new RedisBackend({} as RedisCommandClient)).toThrow(/sendCommand/);
  });
});

describe('RedisBackend expiry', () => {
  let env: Awaited<ReturnType<typeof isolated>>;
  const pexpiretime = (key: string) => env.client.sendCommand(['PEXPIRETIME', key]).then(Number);

  beforeAll(async () => {
    env = await isolated('redis-backend-expiry', { expireRecords: true });
  });
  afterAll(() => env.done());

  it('lets Redis drop an expired record and its indexes at expiresAt, and nothing moves that instant', async () => {
    // Far enough ahead that no stall reaches it before the checks below; then the test
    // waits for Redis to drop the keys rather than for the time to pass.
    const expiresAt = new Date(Date.now() + 60_000);
    const record = makeApiKeyRecord({ expiresAt });
    await env.backend.create(record);
    const recordKey = `${env.backend.keyPrefix}hash:${record.keyHash}`;
    const hashKey = `${env.backend.keyPrefix}id:${record.id}`;
    expect(await pexpiretime(recordKey)).toBe(expiresAt.getTime());
    expect(await pexpiretime(hashKey)).toBe(expiresAt.getTime());

    // Neither a usage write nor an unrelated update extends the key's life in Redis.
    expect(await env.backend.recordUsage(record.id, new Date(), new Date())).toBe(true);
    await env.backend.update(record.id, { name: 'renamed', updatedAt: new Date() });
    expect(await pexpiretime(recordKey)).toBe(expiresAt.getTime());
    expect(await pexpiretime(hashKey)).toBe(expiresAt.getTime());
    expect((await env.backend.getByHash(record.keyHash))?.name).toBe('renamed');

    // Redis's clock is not the test's to step: the instant is brought forward in Redis
    // (what its passage does), and Redis drops both keys as it would at expiresAt.
    for (const key of [recordKey, hashKey]) await env.client.sendCommand(['PEXPIREAT', key, String(Date.now() - 1)]);
    await pollUntil(async () => Number(await env.client.sendCommand(['EXISTS', recordKey, hashKey])) === 0, 'Redis dropping the keys');
    expect(await env.backend.getByHash(record.keyHash)).toBeNull();
    expect(await env.backend.getById(record.id)).toBeNull();
    expect(await env.backend.countByOwner(record.ownerId)).toBe(1); // the list entry is pruned on read
    expect(await collect(env.backend.listByOwner(record.ownerId))).toEqual([]);
    expect(await env.backend.countByOwner(record.ownerId)).toBe(0);
    // The entry in the index across owners goes when a listing across owners passes it.
    expect(await collect(env.backend.listAll({ now: new Date() }))).toEqual([]);
    expect(await scanKeys(env.client, env.namespace)).toEqual(
      expect.arrayContaining([`${env.backend.keyPrefix}all:indexed`]),
    );
    expect(await scanKeys(env.client, env.namespace)).toHaveLength(1);
  });

  it('follows expiresAt on update: retention added, cleared expiry persists', async () => {
    const retained = new RedisBackend(env.client, {
      namespace: env.namespace,
      expireRecords: true,
      expiredRetentionMs: 60_000,
    });
    const expiresAt = new Date(Date.now() + 3_600_000);
    const record = makeApiKeyRecord({ expiresAt });
    await retained.create(record);
    const recordKey = `${retained.keyPrefix}hash:${record.keyHash}`;
    expect(await pexpiretime(recordKey)).toBe(expiresAt.getTime() + 60_000);
    const sooner = new Date(Date.now() + 1_800_000);
    await retained.update(record.id, { expiresAt: sooner, updatedAt: new Date() });
    expect(await pexpiretime(recordKey)).toBe(sooner.getTime() + 60_000);
    await retained.update(record.id, { expiresAt: null, updatedAt: new Date() });
    expect(await pexpiretime(recordKey)).toBe(-1);
    expect(await pexpiretime(`${retained.keyPrefix}id:${record.id}`)).toBe(-1);
    await retained.delete(record.id);
  });

  it('without expireRecords sets no Redis expiry: verification alone enforces expiresAt', async () => {
    const plain = new RedisBackend(env.client, { namespace: env.namespace });
    const record = makeApiKeyRecord({ expiresAt: new Date(Date.now() - 1_000) });
    await plain.create(record);
    expect(await pexpiretime(`${plain.keyPrefix}hash:${record.keyHash}`)).toBe(-1);
    expect(await pexpiretime(`${plain.keyPrefix}id:${record.id}`)).toBe(-1);
    expect((await plain.getByHash(record.keyHash))?.expiresAt?.getTime()).toBe(record.expiresAt!.getTime());
    await plain.delete(record.id);
  });
});

/** The verifier's lookup (`LOOK_UP_BY_HASH`, through callbacks) as a promise. */
function lookUpByHash(backend: RedisBackend, keyHash: string): Promise<ApiKey | null> {
  return new Promise((resolve, reject) => (backend as unknown as CallbackLookup)[LOOK_UP_BY_HASH](keyHash, resolve, reject));
}

describe('RedisBackend when Redis is unavailable', () => {
  const record = makeApiKeyRecord();
  const operations = (backend: RedisBackend): Array<[string, () => Promise<unknown>]> => [
    ['getByHash', () => backend.getByHash(record.keyHash)],
    ['the verifier\'s lookup by hash', () => lookUpByHash(backend, record.keyHash)],
    ['getById', () => backend.getById(record.id)],
    ['create', () => backend.create(record)],
    ['update', () => backend.update(record.id, { name: 'x', updatedAt: new Date() })],
    ['delete', () => backend.delete(record.id)],
    ['listByOwner', () => collect(backend.listByOwner(record.ownerId))],
    ['countByOwner', () => backend.countByOwner(record.ownerId)],
    ['recordUsage', () => backend.recordUsage(record.id, new Date(), new Date())],
  ];

  /**
   * Under fake timers: the call rejects with BackendUnavailableError, naming no hash,
   * while the fake clock stands still, so it waited for no deadline (or anything else).
   */
  async function expectFailsFast(run: () => Promise<unknown>, name: string) {
    const call = track(run());
    expect(await settlesWithoutTimers(call), `${name} settled without a timer`).toBe(true);
    expect(call.error, name).toBeInstanceOf(BackendUnavailableError);
    expect((call.error as Error).message, name).not.toContain(record.keyHash);
  }

  it('fails fast with BackendUnavailableError when pointed at a closed port', async () => {
    const port = await closedPort();
    const { createClient } = await import('redis');
    const client = createClient({
      url: `redis://127.0.0.1:${port}`,
      disableOfflineQueue: true,
      socket: { connectTimeout: 300, reconnectStrategy: false },
    });
    client.on('error', () => undefined);
    await expect(client.connect()).rejects.toThrow();
    const backend = new RedisBackend(client);
    // The 5 s commandTimeoutMs is on the fake clock: failing fast means failing before it moves.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      for (const [name, run] of operations(backend)) await expectFailsFast(run, name);
    } finally {
      vi.useRealTimers();
    }
  });

  it('fails fast while the connection is down, and works again when Redis is back', async () => {
    const proxy = await startRedisProxy();
    const namespace = uniqueNamespace('redis-backend-outage');
    const { createClient } = await import('redis');
    const client = createClient({
      url: proxy.url,
      disableOfflineQueue: true,
      socket: { connectTimeout: 300, reconnectStrategy: () => 50 },
    });
    client.on('error', () => undefined);
    await client.connect();
    const backend = new RedisBackend(client, { namespace });
    try {
      const stored = makeApiKeyRecord();
      await backend.create(stored);

      await proxy.stop();
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      try {
        for (const [name, run] of operations(backend)) await expectFailsFast(run, name);
        await expectFailsFast(() => backend.getByHash(stored.keyHash), 'getByHash of a stored key');
        await proxy.start();
        // The client's reconnect timer was set on the fake clock: let it fire.
        vi.runOnlyPendingTimers();
      } finally {
        vi.useRealTimers();
      }

      await expect.poll(() => backend.getByHash(stored.keyHash).then((r) => r?.id, () => 'down'), {
        timeout: 5_000,
        interval: 50,
      }).toBe(stored.id);
    } finally {
      await proxy.start();
      const admin = await connectRedis();
      await deleteNamespace(admin, namespace);
      await admin.close();
      client.destroy();
      await proxy.stop();
    }
  });

  it('gives up on a Redis that stops answering after commandTimeoutMs', async () => {
    const proxy = await startRedisProxy();
    const { createClient } = await import('redis');
    // Fake timers from the start, so every deadline the backend arms is on the fake clock:
    // each call is sent, and only its deadline, at exactly 200 ms, ends it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const client = createClient({ url: proxy.url, socket: { reconnectStrategy: false } });
    client.on('error', () => undefined);
    await client.connect();
    const backend = new RedisBackend(client, { namespace: uniqueNamespace('redis-backend-hang'), commandTimeoutMs: 200 });
    try {
      expect(await backend.getByHash(record.keyHash)).toBeNull();
      proxy.freeze();
      for (const [operation, call] of [
        ['getByHash', () => backend.getByHash(record.keyHash)],
        ['getByHash', () => lookUpByHash(backend, record.keyHash)],
        ['create', () => backend.create(makeApiKeyRecord())],
      ] as const) {
        const pending = track<unknown>(call());
        await vi.advanceTimersByTimeAsync(199);
        expect(pending.settled).toBe(false);
        await vi.advanceTimersByTimeAsync(1);
        expect(pending.error).toBeInstanceOf(BackendUnavailableError);
        expect((pending.error as Error).message).toContain(operation);
      }
    } finally {
      vi.useRealTimers();
      client.destroy();
      await proxy.stop();
    }
  });
});

describe('RedisBackend purge index of records stored before it existed', () => {
  it('rebuildPurgeIndex files them, page by page, so purge reaches them; running it again changes nothing', async () => {
    // A namespace with glob characters, which SCAN MATCH must take literally.
    const env = await isolated('redis-purge-[index]', { pageSize: 3 });
    try {
      const past = new Date(Date.UTC(1995, 0, 1));
      const expired = Array.from({ length: 7 }, () => makeApiKeyRecord({ expiresAt: past }));
      const revoked = makeApiKeyRecord({ revokedAt: past });
      const live = makeApiKeyRecord();
      for (const record of [...expired, revoked, live]) await storeLegacyRecord(env.client, env.backend.keyPrefix, record);
      const bounds = { expiredBefore: new Date(Date.UTC(1996, 0, 1)), revokedBefore: new Date(Date.UTC(1996, 0, 1)), limit: 100 };
      expect(await env.backend.purge(bounds)).toBe(0);

      expect(await env.backend.rebuildPurgeIndex()).toBe(9);
      expect(await env.backend.rebuildPurgeIndex()).toBe(9);
      expect(await env.backend.purge(bounds)).toBe(8);
      expect((await env.backend.getById(live.id))?.id).toBe(live.id);
      for (const record of [...expired, revoked]) expect(await env.backend.getById(record.id)).toBeNull();
    } finally {
      await env.done();
    }
  });
});
