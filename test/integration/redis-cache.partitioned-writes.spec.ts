import { Logger } from '@nestjs/common';
import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BackendUnavailableError, type ApiKey, type ApiKeyBackend, type ApiKeyChanges, type ListByOwnerOptions, type UpdateOptions } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { LEASE_MARGIN_MS } from '../../lib/redis/redis-cache.backend.js';
import { redisCacheKeys } from '../../lib/redis/redis-cache.keys.js';
import { startCachedInstance, type CachedInstance } from '../fixtures/cached-instance.js';
import { CapturingLogger } from '../fixtures/log-capture.js';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';
import { RedisProxy } from '../fixtures/redis-cache.fixtures.js';
import { pollUntil } from '../fixtures/wait-for.js';

// Two instances of the cached provider (L1 + Redis cache + bus) over one PostgreSQL and
// one Redis, as a fleet runs them. Instance A reaches Redis through a proxy this file
// controls, so A alone can be cut off (its cache and its bus connections), while B and
// PostgreSQL stay reachable for both: the partition the fleet soak found.

/** A store whose `update` can be held before it starts, and whose `getByHash` after it read. */
class GatedBackend implements ApiKeyBackend {
  private updateGate: { entered: () => void; open: Promise<void> } | undefined;
  private lookupGate: { entered: (record: ApiKey | null) => void; open: Promise<void> } | undefined;

  constructor(private readonly inner: ApiKeyBackend) {}

  /** The next `update` waits, once it is called, until the returned `open()`. */
  holdNextUpdate(): { entered: Promise<void>; open: () => void } {
    let open!: () => void;
    let entered!: () => void;
    const reached = new Promise<void>((resolve) => (entered = resolve));
    this.updateGate = { entered, open: new Promise<void>((resolve) => (open = resolve)) };
    return { entered: reached, open };
  }

  /** The next `getByHash` reads the store, then waits with what it read until `open()`. */
  holdNextLookupAfterRead(): { read: Promise<ApiKey | null>; open: () => void } {
    let open!: () => void;
    let entered!: (record: ApiKey | null) => void;
    const read = new Promise<ApiKey | null>((resolve) => (entered = resolve));
    this.lookupGate = { entered, open: new Promise<void>((resolve) => (open = resolve)) };
    return { read, open };
  }

  async getByHash(keyHash: string): Promise<ApiKey | null> {
    const gate = this.lookupGate;
    this.lookupGate = undefined;
    const record = await this.inner.getByHash(keyHash);
    if (gate) {
      gate.entered(record);
      await gate.open;
    }
    return record;
  }

  getById(id: string): Promise<ApiKey | null> {
    return this.inner.getById(id);
  }

  create(apiKey: ApiKey): Promise<ApiKey> {
    return this.inner.create(apiKey);
  }

  async update(id: string, changes: ApiKeyChanges, options?: UpdateOptions): Promise<ApiKey> {
    const gate = this.updateGate;
    this.updateGate = undefined;
    if (gate) {
      gate.entered();
      await gate.open;
    }
    return this.inner.update(id, changes, options);
  }

  delete(id: string): Promise<void> {
    return this.inner.delete(id);
  }

  listByOwner(ownerId: string, options?: ListByOwnerOptions): AsyncIterable<ApiKey> {
    return this.inner.listByOwner(ownerId, options);
  }

  recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean> {
    return this.inner.recordUsage(id, usedAt, staleBefore);
  }
}

let db: TestDatabase;
let orm: MikroORM;
let raw: Awaited<ReturnType<typeof connectRedis>>;
const namespace = uniqueNamespace('partitioned-writes');
const WRITE_TIMEOUT_MS = 5_000;

beforeAll(async () => {
  db = await createTestDatabase('partitioned_writes');
  orm = await initOrm(db.url);
  await new MikroOrmBackend(orm).ensureSchema();
  raw = await connectRedis();
});

afterAll(async () => {
  await deleteNamespace(raw, namespace);
  await raw?.close();
  await orm?.close();
  await db?.drop();
});

interface Fleet {
  a: CachedInstance;
  b: CachedInstance;
  proxy: RedisProxy;
  storeA: GatedBackend;
  storeB: GatedBackend;
  /** B's L1 clock: moved by hand past its ttl to make B ask its Redis cache again. */
  clockB: { now: number };
  logA: CapturingLogger;
  /** Lines logged through Nest's static Logger (the L1 and the bus of both instances). */
  shared: string[];
}

const open: Fleet[] = [];

afterEach(async () => {
  vi.useRealTimers();
  for (const fleet of open.splice(0)) {
    fleet.proxy.restore();
    await fleet.a.close();
    await fleet.b.close();
    await fleet.proxy.close();
  }
  vi.restoreAllMocks();
});

async function startFleet(unreachableWrites?: 'refuse' | 'replay', writeTimeoutMs = WRITE_TIMEOUT_MS): Promise<Fleet> {
  const shared: string[] = [];
  for (const level of ['log', 'warn', 'error'] as const) {
    vi.spyOn(Logger.prototype, level).mockImplementation((message: unknown) => void shared.push(`[${level}] ${String(message)}`));
  }
  const proxy = await RedisProxy.start();
  const storeA = new GatedBackend(new MikroOrmBackend(orm));
  const storeB = new GatedBackend(new MikroOrmBackend(orm));
  const clockB = { now: Date.now() };
  const logA = new CapturingLogger();
  const a = await startCachedInstance(namespace, storeA, {
    redisUrl: proxy.url,
    cacheUrl: proxy.url,
    extra: { timeoutMs: 100, retryIntervalMs: 200, logger: logA, writeTimeoutMs, ...(unreachableWrites ? { unreachableWrites } : {}) },
  });
  const b = await startCachedInstance(namespace, storeB, {
    extra: { logger: new CapturingLogger(), writeTimeoutMs: WRITE_TIMEOUT_MS, l1: { now: () => clockB.now } },
  });
  const fleet = { a, b, proxy, storeA, storeB, clockB, logA, shared };
  open.push(fleet);
  return fleet;
}

/** Issues a key on B and warms it on both instances (L1 and the Redis entry). */
async function warmKey(fleet: Fleet) {
  const issued = await fleet.b.service.issue({ ownerId: 'o', name: 'k' });
  expect((await fleet.b.service.authenticate(issued.key)).ok).toBe(true);
  expect((await fleet.a.service.authenticate(issued.key)).ok).toBe(true);
  return issued;
}

/** Past B's L1 ttl (1 s), so B's next lookup asks its Redis cache. */
function expireL1OfB(fleet: Fleet): void {
  fleet.clockB.now += 1_001;
}

async function storedRevokedAt(id: string): Promise<Date | null> {
  const [row] = await db.query<{ revoked_at: Date | null }>('select revoked_at from api_keys where id = ?', [id]);
  return row!.revoked_at;
}

describe('a write on an instance cut off from Redis (the fleet soak partition)', () => {
  it('is refused by default: 503-class error, nothing stored, the key works everywhere as before', async () => {
    const fleet = await startFleet();
    const { key, apiKey } = await warmKey(fleet);
    fleet.proxy.hang();

    const refused = await fleet.a.service.revoke(apiKey.id).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(BackendUnavailableError);
    expect((refused as Error).message).toMatch(/^The API key write was refused and nothing was written: .*Retry, on another instance/);
    expect(await storedRevokedAt(apiKey.id)).toBeNull();
    expireL1OfB(fleet);
    expect((await fleet.b.service.authenticate(key)).ok).toBe(true);
    expect((await fleet.a.service.authenticate(key)).ok).toBe(true);

    // The retry on an instance that reaches Redis is acknowledged, and B refuses at once.
    await fleet.b.service.revoke(apiKey.id);
    expect(await fleet.b.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
    expect(fleet.logA.lines.filter((l) => l.startsWith('[warn]'))).toEqual([expect.stringMatching(/Redis cache is unavailable/)]);
  });

  it('refuses a rotation there before it stores anything, so the retry on B rotates the key', async () => {
    const fleet = await startFleet();
    const { key, apiKey } = await warmKey(fleet);
    fleet.proxy.hang();

    await expect(fleet.a.service.rotate(apiKey.id, { gracePeriodMs: 0 })).rejects.toBeInstanceOf(BackendUnavailableError);
    const [{ count }] = await db.query<{ count: string }>('select count(*) from api_keys where rotated_from_id = ?', [apiKey.id]);
    expect(Number(count)).toBe(0);

    const rotated = await fleet.b.service.rotate(apiKey.id, { gracePeriodMs: 0 });
    expect((await fleet.b.service.authenticate(rotated.key)).ok).toBe(true);
    expect((await fleet.b.service.authenticate(key)).ok).toBe(false);
  });

  it('with unreachableWrites "replay": acknowledged, and B serves the old record from Redis until A is back and replays it', async () => {
    const fleet = await startFleet('replay');
    const { key, apiKey } = await warmKey(fleet);
    fleet.proxy.hang();

    await fleet.a.service.revoke(apiKey.id);
    expect(await storedRevokedAt(apiKey.id)).not.toBeNull();
    // The documented bound of "replay": B's Redis entry still shows the key valid.
    expireL1OfB(fleet);
    expect((await fleet.b.service.authenticate(key)).ok).toBe(true);

    fleet.proxy.restore();
    await pollUntil(() => fleet.a.backend.redisCache.cacheAvailable, 'A to reach Redis and replay');
    expireL1OfB(fleet);
    expect(await fleet.b.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
    expect(fleet.logA.lines.some((l) => /1 pending invalidation\(s\) replayed/.test(l))).toBe(true);
    expect(fleet.shared.filter((l) => l.startsWith('[error]'))).toEqual([]);
  });
});

describe('a writer cut off after its lease and before clearing it', () => {
  it('B treats the key as a miss, reads PostgreSQL, refuses the revoked key; no fill racing the write reinstalls the old record', async () => {
    const fleet = await startFleet();
    const { key, apiKey } = await warmKey(fleet);

    // A places its lease, then its PostgreSQL write is held.
    const write = fleet.storeA.holdNextUpdate();
    const revoking = fleet.a.service.revoke(apiKey.id);
    await write.entered;

    // B, while the lease runs and before the commit: bypasses the cache, reads the old row.
    expireL1OfB(fleet);
    const lookup = fleet.storeB.holdNextLookupAfterRead();
    const reading = fleet.b.service.authenticate(key);
    expect((await lookup.read)?.revokedAt).toBeNull();

    // A loses Redis, commits, and cannot clear its lease or publish: acknowledged anyway.
    fleet.proxy.hang();
    write.open();
    await revoking;
    expect(await storedRevokedAt(apiKey.id)).not.toBeNull();

    // B's read of the old row finishes after the commit (concurrent with the write, so
    // either answer is right for it), and must not have put that row in Redis.
    lookup.open();
    expect((await reading).ok).toBe(true);
    expireL1OfB(fleet);
    expect(await fleet.b.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
    expireL1OfB(fleet);
    expect(await fleet.b.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
  });

  it('an old-generation fill that lands after the lease is ignored, also once the lease has ended', async () => {
    const fleet = await startFleet();
    const { key, apiKey } = await warmKey(fleet);
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();

    // B reads the generation and the old row before A's lease; its fill waits.
    expireL1OfB(fleet);
    // A settled generation without an entry: B's next lookup misses Redis and reads PostgreSQL.
    await fleet.b.backend.redisCache.invalidate((await fleet.storeB.getById(apiKey.id))!.keyHash, apiKey.id);
    const lookup = fleet.storeB.holdNextLookupAfterRead();
    const reading = fleet.b.service.authenticate(key);
    expect((await lookup.read)?.revokedAt).toBeNull();

    // A leases, commits, and is cut off before clearing.
    const write = fleet.storeA.holdNextUpdate();
    const revoking = fleet.a.service.revoke(apiKey.id);
    await write.entered;
    fleet.proxy.hang();
    write.open();
    await revoking;

    // B's fill of the old row lands now, under the generation it read before the lease.
    lookup.open();
    await reading;
    expireL1OfB(fleet);
    expect(await fleet.b.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });

    // The lease ends (A never cleared it): B fills from PostgreSQL, which holds the revoke.
    vi.setSystemTime(t0 + WRITE_TIMEOUT_MS + LEASE_MARGIN_MS + 1);
    fleet.clockB.now += 10_000;
    expect(await fleet.b.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
    expireL1OfB(fleet);
    expect(await fleet.b.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
  });

  it('while the lease runs B reads PostgreSQL for the key; once it has ended, B caches it again', async () => {
    const fleet = await startFleet();
    const { key, apiKey } = await warmKey(fleet);
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    const reads = vi.spyOn(fleet.storeB, 'getByHash');

    // A leases, commits a rename (the key stays valid) and is cut off before clearing.
    const write = fleet.storeA.holdNextUpdate();
    const renaming = fleet.a.service.update(apiKey.id, { name: 'renamed' });
    await write.entered;
    fleet.proxy.hang();
    write.open();
    await renaming;

    for (let i = 0; i < 3; i++) {
      expireL1OfB(fleet);
      expect((await fleet.b.service.authenticate(key)).ok).toBe(true);
    }
    expect(reads).toHaveBeenCalledTimes(3);

    vi.setSystemTime(t0 + WRITE_TIMEOUT_MS + LEASE_MARGIN_MS + 1);
    for (let i = 0; i < 3; i++) {
      expireL1OfB(fleet);
      const result = await fleet.b.service.authenticate(key);
      expect(result.ok && result.apiKey.name).toBe('renamed');
    }
    // One fill after the lease, then hits from Redis.
    expect(reads).toHaveBeenCalledTimes(4);
  });

  it('reports a store write still unanswered at writeTimeoutMs as failed, keeps the lease over it, and ends the lease once the store answers', async () => {
    const fleet = await startFleet(undefined, 300);
    const { key, apiKey } = await warmKey(fleet);
    const reads = vi.spyOn(fleet.storeB, 'getByHash');
    // The key's generation as Redis holds it (through Keyv's JSON): a lease shows as `~`.
    const { id: cacheId } = redisCacheKeys(namespace, (await fleet.storeB.getById(apiKey.id))!.keyHash);
    const leased = async () => {
      const [name] = (await scanKeys(raw, namespace)).filter((n) => n.endsWith(`{${cacheId}}:g`));
      return (await raw.get(name!))!.includes('~');
    };

    const write = fleet.storeA.holdNextUpdate();
    const renaming = fleet.a.service.update(apiKey.id, { name: 'late' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    await write.entered;
    // The deadline passes while PostgreSQL has not answered: the caller hears "may still be applied".
    const failure = await renaming;
    expect(failure).toBeInstanceOf(BackendUnavailableError);
    expect((failure as Error).message).toMatch(/did not finish the API key write within 300 ms; it may still be applied/);
    expect(await leased()).toBe(true);
    expireL1OfB(fleet);
    expect((await fleet.b.service.authenticate(key)).ok).toBe(true);
    expect(reads).toHaveBeenCalledTimes(1); // the lease sends B to PostgreSQL

    // PostgreSQL answers late: the write lands, and its lease is ended then.
    write.open();
    await pollUntil(async () => !(await leased()), 'the late write to end its lease');
    for (let i = 0; i < 3; i++) {
      expireL1OfB(fleet);
      const result = await fleet.b.service.authenticate(key);
      expect(result.ok && result.apiKey.name).toBe('late');
    }
    expect(reads).toHaveBeenCalledTimes(2); // one fill, then Redis
  });
});
