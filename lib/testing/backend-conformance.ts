import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyNotFoundError, DuplicateApiKeyError, VersionConflictError } from '../api-key.errors.js';
import type { ApiKeyBackend } from '../backends/backend.interface.js';

type TestFn = (name: string, fn: (context?: unknown) => Promise<void> | void, timeout?: number) => unknown;
type HookFn = (fn: () => Promise<void> | void, timeout?: number) => unknown;

/** The test runner's functions; Vitest, Jest and `node:test` all fit. */
export interface ConformanceRunner {
  describe: (name: string, fn: () => void) => unknown;
  it: TestFn;
  beforeAll: HookFn;
  afterAll: HookFn;
}

/** How to build the backend under test. */
export interface BackendConformanceOptions<B extends ApiKeyBackend = ApiKeyBackend> {
  /** Creates the backend (once for the suite). Each test uses fresh owner ids, so no clearing is needed. */
  create: () => B | Promise<B>;
  /** Releases what `create` opened. */
  destroy?: (backend: B) => void | Promise<void>;
  /** Concurrency used by the race tests. Default 50. */
  concurrency?: number;
  /** Interleaved pairs of updates of different fields in the lost-update test. Default 200. */
  updatePairs?: number;
  /**
   * Stores `record` the way a store written before `version` and `issuedById` existed
   * holds it (without those fields). When given, the suite checks such a record reads
   * as version 1 with no issuer, and updates from there.
   */
  storeLegacyRecord?: (backend: B, record: Omit<ApiKey, 'version' | 'issuedById'>) => Promise<void>;
}

/** A valid record with random id, hash and owner; override any field. */
export function makeApiKeyRecord(overrides: Partial<ApiKey> = {}): ApiKey {
  const now = new Date(Math.floor(Date.now() / 1000) * 1000 + 123);
  return {
    id: randomUUID(),
    name: 'conformance key',
    ownerId: `owner-${randomUUID()}`,
    keyHash: createHash('sha256').update(randomBytes(32)).digest('hex'),
    hint: 'sk_…AbCd',
    scopes: ['read', 'write:things'],
    metadata: { plan: 'pro', nested: { n: 1, list: [1, 'two', null] }, text: 'ünïcødé ✓' },
    createdAt: now,
    updatedAt: now,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
    rotatedFromId: null,
    environment: null,
    policy: null,
    version: 1,
    issuedById: null,
    ...overrides,
  };
}

/**
 * Marks a case that does not apply to this backend as skipped where the runner can
 * (Vitest's test context has `skip`); elsewhere it simply passes.
 */
function skipped(context: unknown): void {
  const skip = (context as { skip?: (note?: string) => void } | undefined)?.skip;
  if (typeof skip === 'function') skip('not implemented by this backend');
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

function assertSameRecord(actual: ApiKey | null, expected: ApiKey): void {
  assert.ok(actual, `record ${expected.id} should exist`);
  assert.deepEqual({ ...actual }, { ...expected });
  for (const field of ['createdAt', 'updatedAt'] as const) assert.ok(actual[field] instanceof Date, `${field} is a Date`);
}

/**
 * Registers the backend contract's tests with your runner. Every backend shipped with
 * the library passes it; run it against your own:
 *
 * ```ts
 * import { describe, it, beforeAll, afterAll } from 'vitest';
 * import { runBackendConformance } from 'nestjs-api-auth/testing';
 * runBackendConformance('MyBackend', { describe, it, beforeAll, afterAll }, { create: () => new MyBackend() });
 * ```
 */
export function runBackendConformance<B extends ApiKeyBackend>(
  name: string,
  runner: ConformanceRunner,
  options: BackendConformanceOptions<B>,
): void {
  const { describe, it, beforeAll, afterAll } = runner;
  const concurrency = options.concurrency ?? 50;
  let backend: B;

  describe(`${name} keeps the ApiKeyBackend contract`, () => {
    beforeAll(async () => {
      backend = await options.create();
    });
    afterAll(async () => {
      if (backend && options.destroy) await options.destroy(backend);
    });

    it('creates a record and reads it back by id and by hash, every field intact', async () => {
      const record = makeApiKeyRecord({
        expiresAt: new Date(Date.now() + 86_400_000),
        lastUsedAt: new Date(Date.now() - 5_000),
        rotatedFromId: randomUUID(),
      });
      const created = await backend.create(record);
      assertSameRecord(created, record);
      assertSameRecord(await backend.getById(record.id), record);
      assertSameRecord(await backend.getByHash(record.keyHash), record);
    });

    it('keeps empty scopes, empty metadata and null dates as they are', async () => {
      const record = makeApiKeyRecord({ scopes: [], metadata: {} });
      await backend.create(record);
      assertSameRecord(await backend.getById(record.id), record);
    });

    it('stores environment and policy (JSON), updates the policy, and clears it back to null', async () => {
      const policy = {
        rateLimits: [{ name: 'burst', limit: 5, windowMs: 1_000 }],
        quota: { limit: 1_000, refillIntervalMs: 86_400_000 },
        allowedIps: ['203.0.113.7', '10.0.0.0/8', '2001:db8::/32'],
        counterKey: randomUUID(),
      };
      const record = makeApiKeyRecord({ environment: 'live', policy });
      assertSameRecord(await backend.create(record), record);
      assertSameRecord(await backend.getById(record.id), record);
      assertSameRecord(await backend.getByHash(record.keyHash), record);

      const updatedAt = new Date(record.updatedAt.getTime() + 1_000);
      const changed: ApiKey = { ...record, policy: { quota: { limit: 3 } }, updatedAt, version: 2 };
      assertSameRecord(await backend.update(record.id, { policy: { quota: { limit: 3 } }, updatedAt }), changed);
      assertSameRecord(await backend.getByHash(record.keyHash), changed);

      const cleared: ApiKey = { ...changed, policy: null, version: 3 };
      assertSameRecord(await backend.update(record.id, { policy: null, updatedAt }), cleared);
      assertSameRecord(await backend.getById(record.id), cleared);
    });

    it('defaults environment and policy to null', async () => {
      const record = makeApiKeyRecord();
      await backend.create(record);
      const read = await backend.getByHash(record.keyHash);
      assert.equal(read?.environment, null);
      assert.equal(read?.policy, null);
    });

    it('answers null for an unknown id or hash', async () => {
      assert.equal(await backend.getById(randomUUID()), null);
      assert.equal(await backend.getByHash(makeApiKeyRecord().keyHash), null);
    });

    it('rejects a duplicate id or hash with DuplicateApiKeyError and keeps the original', async () => {
      const original = makeApiKeyRecord();
      await backend.create(original);
      await assert.rejects(backend.create(makeApiKeyRecord({ id: original.id })), (error: unknown) => {
        assert.ok(error instanceof DuplicateApiKeyError, `expected DuplicateApiKeyError, got ${String(error)}`);
        assert.equal(error.field, 'id');
        return true;
      });
      await assert.rejects(backend.create(makeApiKeyRecord({ keyHash: original.keyHash })), (error: unknown) => {
        assert.ok(error instanceof DuplicateApiKeyError, `expected DuplicateApiKeyError, got ${String(error)}`);
        assert.equal(error.field, 'keyHash');
        assert.ok(!error.message.includes(original.keyHash), 'the message must not contain the hash');
        return true;
      });
      assertSameRecord(await backend.getById(original.id), original);
    });

    it('returns copies: mutating inputs or results changes nothing stored', async () => {
      const record = makeApiKeyRecord();
      const created = await backend.create(record);
      record.scopes.push('mutated-input');
      (record.metadata as { plan: string }).plan = 'mutated';
      created.scopes.push('mutated-output');
      const read = await backend.getById(record.id);
      assert.ok(read);
      assert.deepEqual(read.scopes, ['read', 'write:things']);
      assert.equal(read.metadata.plan, 'pro');
      read.name = 'changed locally';
      assert.equal((await backend.getByHash(record.keyHash))?.name, 'conformance key');
    });

    it('stores version and issuedById as given at create', async () => {
      const issuer = makeApiKeyRecord();
      const record = makeApiKeyRecord({ ownerId: issuer.ownerId, issuedById: issuer.id, version: 1 });
      assertSameRecord(await backend.create(record), record);
      assertSameRecord(await backend.getById(record.id), record);
      assertSameRecord(await backend.getByHash(record.keyHash), record);
    });

    it('updates only the given fields, bumps version by 1 and answers the stored record', async () => {
      const record = makeApiKeyRecord({ expiresAt: new Date(Date.now() + 86_400_000), policy: { quota: { limit: 9 } } });
      await backend.create(record);
      const expiresAt = new Date(Date.now() + 3_600_000);
      const updatedAt = new Date(record.updatedAt.getTime() + 1_000);
      const changes = { name: 'renamed', scopes: ['admin'], metadata: { tier: 2 }, expiresAt, updatedAt };
      const expected: ApiKey = { ...record, ...changes, version: 2 };
      assertSameRecord(await backend.update(record.id, changes), expected);
      assertSameRecord(await backend.getById(record.id), expected);
      assertSameRecord(await backend.getByHash(record.keyHash), expected);

      // Clearing to null, and leaving out (or passing undefined for) the rest.
      const later = new Date(updatedAt.getTime() + 1_000);
      const cleared: ApiKey = { ...expected, expiresAt: null, updatedAt: later, version: 3 };
      assertSameRecord(await backend.update(record.id, { expiresAt: null, name: undefined, updatedAt: later }), cleared);
      assertSameRecord(await backend.getByHash(record.keyHash), cleared);
    });

    it('keeps fields it was not given as another writer left them', async () => {
      const record = makeApiKeyRecord({ metadata: { n: 0 } });
      await backend.create(record);
      const t = record.updatedAt;
      await backend.update(record.id, { scopes: ['fewer'], policy: { quota: { limit: 1 } }, updatedAt: t });
      // A writer that read the record before the first update, changing only metadata.
      const after = await backend.update(record.id, { metadata: { n: 1 }, updatedAt: t });
      assert.deepEqual(after.scopes, ['fewer']);
      assert.deepEqual(after.policy, { quota: { limit: 1 } });
      assert.deepEqual(after.metadata, { n: 1 });
      assert.equal(after.version, 3);
    });

    it('does not bump version on recordUsage', async () => {
      const record = makeApiKeyRecord();
      await backend.create(record);
      const now = new Date();
      assert.equal(await backend.recordUsage(record.id, now, now), true);
      assert.equal((await backend.getById(record.id))?.version, 1);
      assert.equal((await backend.update(record.id, { name: 'n', updatedAt: now })).version, 2);
    });

    it('with expectedVersion, writes only at that version; a conflict writes nothing', async () => {
      const record = makeApiKeyRecord();
      await backend.create(record);
      const t = record.updatedAt;
      const first = await backend.update(record.id, { name: 'first', updatedAt: t }, { expectedVersion: 1 });
      assert.equal(first.version, 2);
      await assert.rejects(backend.update(record.id, { name: 'stale', revokedAt: new Date(), updatedAt: new Date() }, { expectedVersion: 1 }), (error: unknown) => {
        assert.ok(error instanceof VersionConflictError, `expected VersionConflictError, got ${String(error)}`);
        assert.equal(error.expectedVersion, 1);
        assert.equal(error.actualVersion, 2);
        return true;
      });
      assertSameRecord(await backend.getById(record.id), first);
      assertSameRecord(await backend.getByHash(record.keyHash), first);
      assert.equal((await backend.update(record.id, { name: 'second', updatedAt: t }, { expectedVersion: 2 })).version, 3);
    });

    it('of racing writers pinned to one version, exactly one wins', async () => {
      const record = makeApiKeyRecord();
      await backend.create(record);
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => backend.update(record.id, { name: `writer ${i}`, updatedAt: new Date() }, { expectedVersion: 1 })),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1);
      for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof VersionConflictError, String(r.reason));
      const stored = await backend.getById(record.id);
      assert.equal(stored?.version, 2);
      assert.equal(stored?.name, (won[0] as PromiseFulfilledResult<ApiKey>).value.name);
    });

    it('rejects an update of a missing id with ApiKeyNotFoundError', async () => {
      await assert.rejects(backend.update(randomUUID(), { name: 'x', updatedAt: new Date() }), ApiKeyNotFoundError);
      await assert.rejects(backend.update(randomUUID(), { name: 'x', updatedAt: new Date() }, { expectedVersion: 1 }), ApiKeyNotFoundError);
    });

    it('keeps the first revokedAt: a later revokedAt is ignored, the rest of the update applies', async () => {
      const record = makeApiKeyRecord();
      await backend.create(record);
      const revokedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
      const revoked = await backend.update(record.id, { revokedAt, updatedAt: revokedAt });
      assert.deepEqual(revoked.revokedAt, revokedAt);
      const again = await backend.update(record.id, { name: 'later writer', revokedAt: new Date(revokedAt.getTime() + 5_000), updatedAt: revokedAt });
      assert.deepEqual(again.revokedAt, revokedAt);
      assert.equal(again.name, 'later writer');
      assert.equal(again.version, 3);
      assert.deepEqual((await backend.getByHash(record.keyHash))?.revokedAt, revokedAt);
    });

    it('keeps both of concurrent updates of different fields, every time', async () => {
      const pairs = options.updatePairs ?? 200;
      const record = makeApiKeyRecord({ metadata: { n: -1 } });
      await backend.create(record);
      const lost: string[] = [];
      for (let i = 0; i < pairs; i++) {
        const t = new Date();
        const scopes = [`scope-${i}`];
        const [, b] = await Promise.all([
          backend.update(record.id, { metadata: { n: i }, updatedAt: t }),
          backend.update(record.id, { scopes, policy: { quota: { limit: i + 1 } }, expiresAt: new Date(t.getTime() + 3_600_000 + i), updatedAt: t }),
        ]);
        const stored = await backend.getById(record.id);
        if (stored?.metadata.n !== i || stored.scopes[0] !== scopes[0] || stored.policy?.quota?.limit !== i + 1) lost.push(`pair ${i}`);
        assert.ok(b.version >= 2 * i + 2);
      }
      assert.deepEqual(lost, [], 'no update may undo another');
      assert.equal((await backend.getById(record.id))?.version, 1 + 2 * pairs);
    });

    it('deletes the record and its index entries; deleting again or a missing id resolves', async () => {
      const record = makeApiKeyRecord();
      await backend.create(record);
      await backend.delete(record.id);
      assert.equal(await backend.getById(record.id), null);
      assert.equal(await backend.getByHash(record.keyHash), null);
      assert.deepEqual(await collect(backend.listByOwner(record.ownerId)), []);
      await backend.delete(record.id);
      await backend.delete(randomUUID());
      // The hash is free again: a new record may use it.
      await backend.create(makeApiKeyRecord({ keyHash: record.keyHash }));
    });

    it('lists an owner\'s records by createdAt then id, resumes after a cursor, honours limit', async () => {
      const ownerId = `owner-${randomUUID()}`;
      const base = Math.floor(Date.now() / 1000) * 1000;
      const records = Array.from({ length: 7 }, (_, i) =>
        makeApiKeyRecord({ ownerId, createdAt: new Date(base + (i % 3) * 1000), updatedAt: new Date(base) }),
      );
      for (const record of records) await backend.create(record);
      await backend.create(makeApiKeyRecord()); // another owner
      const expected = [...records].sort(
        (a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
      );
      const all = await collect(backend.listByOwner(ownerId));
      assert.deepEqual(all.map((r) => r.id), expected.map((r) => r.id));
      const firstThree = await collect(backend.listByOwner(ownerId, { limit: 3 }));
      assert.deepEqual(firstThree.map((r) => r.id), expected.slice(0, 3).map((r) => r.id));
      const rest = await collect(backend.listByOwner(ownerId, { after: firstThree[2]! }));
      assert.deepEqual(rest.map((r) => r.id), expected.slice(3).map((r) => r.id));
      assert.deepEqual(await collect(backend.listByOwner(`owner-${randomUUID()}`)), []);
      if (backend.countByOwner) assert.equal(await backend.countByOwner(ownerId), 7);
    });

    it('lists the records a key issued (listByIssuer, when implemented), and forgets deleted ones', async (context?: unknown) => {
      if (!backend.listByIssuer) return skipped(context);
      const issuer = makeApiKeyRecord();
      await backend.create(issuer);
      const issued = Array.from({ length: 5 }, () => makeApiKeyRecord({ ownerId: issuer.ownerId, issuedById: issuer.id }));
      for (const record of issued) await backend.create(record);
      await backend.create(makeApiKeyRecord({ ownerId: issuer.ownerId }));
      await backend.create(makeApiKeyRecord({ issuedById: randomUUID() }));
      const ids = (records: ApiKey[]) => records.map((r) => r.id).sort();
      const listed = await collect(backend.listByIssuer(issuer.id));
      assert.deepEqual(ids(listed), ids(issued));
      for (const record of listed) assertSameRecord(record, issued.find((r) => r.id === record.id)!);
      await backend.delete(issued[0]!.id);
      assert.deepEqual(ids(await collect(backend.listByIssuer(issuer.id))), ids(issued.slice(1)));
      assert.deepEqual(await collect(backend.listByIssuer(randomUUID())), []);
    });

    it('records usage only when lastUsedAt is null or older than staleBefore, touching nothing else', async () => {
      const record = makeApiKeyRecord();
      await backend.create(record);
      const t0 = new Date(Math.floor(Date.now() / 1000) * 1000);
      assert.equal(await backend.recordUsage(record.id, t0, new Date(t0.getTime() - 60_000)), true);
      assert.deepEqual((await backend.getById(record.id))?.lastUsedAt, t0);
      const t1 = new Date(t0.getTime() + 10_000);
      assert.equal(await backend.recordUsage(record.id, t1, new Date(t1.getTime() - 60_000)), false);
      assert.deepEqual((await backend.getById(record.id))?.lastUsedAt, t0);
      const t2 = new Date(t0.getTime() + 61_000);
      assert.equal(await backend.recordUsage(record.id, t2, new Date(t2.getTime() - 60_000)), true);
      const after = await backend.getById(record.id);
      assertSameRecord(after, { ...record, lastUsedAt: t2 });
      assert.equal(await backend.recordUsage(randomUUID(), t2, t2), false);
    });

    it('keeps a revocation when usage writes race it', async () => {
      const record = makeApiKeyRecord();
      await backend.create(record);
      const revokedAt = new Date();
      const usage = Array.from({ length: concurrency }, (_, i) => {
        const at = new Date(Date.now() + i);
        return backend.recordUsage(record.id, at, at);
      });
      await Promise.all([...usage, backend.update(record.id, { revokedAt, updatedAt: revokedAt })]);
      const after = await backend.getByHash(record.keyHash);
      assert.ok(after?.revokedAt, 'the key must stay revoked');
    });

    it('reads a record stored before versions existed as version 1 without issuer, and updates it', async (context?: unknown) => {
      if (!options.storeLegacyRecord) return skipped(context);
      const { version: _version, issuedById: _issuedById, ...legacy } = makeApiKeyRecord();
      await options.storeLegacyRecord(backend, legacy);
      const expected: ApiKey = { ...legacy, version: 1, issuedById: null };
      assertSameRecord(await backend.getById(legacy.id), expected);
      assertSameRecord(await backend.getByHash(legacy.keyHash), expected);
      assert.deepEqual((await collect(backend.listByOwner(legacy.ownerId))).map((r) => r.version), [1]);
      await assert.rejects(backend.update(legacy.id, { name: 'x', updatedAt: legacy.updatedAt }, { expectedVersion: 2 }), VersionConflictError);
      const updated = await backend.update(legacy.id, { name: 'renamed', updatedAt: legacy.updatedAt }, { expectedVersion: 1 });
      assertSameRecord(updated, { ...expected, name: 'renamed', version: 2 });
      assertSameRecord(await backend.getByHash(legacy.keyHash), { ...expected, name: 'renamed', version: 2 });
    });

    describe('purge (optional: deletes expired and revoked records in bounded batches)', () => {
      // Ancient instants, one year per case, so no other case's records ever match.
      const at = (year: number, month: number) => new Date(Date.UTC(year, month, 1));
      const ids = (records: Array<{ id: string }>) => records.map((r) => r.id).sort();
      /** The records still stored: a store may drop expired ones itself (RedisBackend's expireRecords). */
      const stored = async <R extends { id: string }>(records: R[]): Promise<R[]> => {
        const found = await Promise.all(records.map((r) => backend.getById(r.id)));
        return records.filter((_, i) => found[i] !== null);
      };

      it('deletes only what each criterion names, with every index entry', async (context?: unknown) => {
        if (!backend.purge) return skipped(context);
        const ownerId = `owner-${randomUUID()}`;
        const expiredEarly = makeApiKeyRecord({ ownerId, expiresAt: at(1990, 0) });
        const expiredLate = makeApiKeyRecord({ ownerId, expiresAt: at(1990, 9) });
        const revokedEarly = makeApiKeyRecord({ ownerId, revokedAt: at(1990, 1) });
        const revokedLate = makeApiKeyRecord({ ownerId, revokedAt: at(1990, 10) });
        const kept = makeApiKeyRecord({ ownerId });
        for (const record of [expiredEarly, expiredLate, revokedEarly, revokedLate, kept]) await backend.create(record);
        const expired = await stored([expiredEarly, expiredLate]);
        // Read first, so a cache in front of the store holds them when they go.
        for (const record of [expiredEarly, revokedEarly]) await backend.getByHash(record.keyHash);

        assert.equal(await backend.purge({ expiredBefore: at(1990, 5), limit: 10 }), expired.includes(expiredEarly) ? 1 : 0);
        assert.equal(await backend.getById(expiredEarly.id), null);
        assert.equal(await backend.getByHash(expiredEarly.keyHash), null);
        assert.equal(await backend.purge({ revokedBefore: at(1990, 5), limit: 10 }), 1);
        assert.equal(await backend.getByHash(revokedEarly.keyHash), null);
        assert.deepEqual(ids(await collect(backend.listByOwner(ownerId))), ids(await stored([expiredLate, revokedLate, kept])));

        const late = expired.includes(expiredLate) ? 1 : 0;
        assert.equal(await backend.purge({ expiredBefore: at(1990, 11), revokedBefore: at(1990, 11), limit: 10 }), late + 1);
        assert.deepEqual(ids(await collect(backend.listByOwner(ownerId))), ids([kept]));
        if (backend.countByOwner) assert.equal(await backend.countByOwner(ownerId), 1);
        assertSameRecord(await backend.getByHash(kept.keyHash), kept);
        // The id and the hash are free again: nothing of the deleted records is left behind.
        await backend.create({ ...expiredEarly, expiresAt: null });
        assert.equal((await backend.getByHash(expiredEarly.keyHash))?.id, expiredEarly.id);
      });

      it('deletes at most `limit` per call and continues on the next call', async (context?: unknown) => {
        if (!backend.purge) return skipped(context);
        const records = Array.from({ length: 7 }, (_, i) => makeApiKeyRecord({ expiresAt: new Date(at(1991, 0).getTime() + i) }));
        for (const record of records) await backend.create(record);
        const present = await stored(records);
        const reported: Array<{ id: string; keyHash: string }> = [];
        const counts: number[] = [];
        for (let call = 0; call < 4; call++) {
          counts.push(await backend.purge({ expiredBefore: at(1991, 6), limit: 3, onDeleted: (deleted) => reported.push(...deleted) }));
        }
        assert.deepEqual(counts, present.length === 0 ? [0, 0, 0, 0] : [3, 3, 1, 0]);
        for (const record of records) assert.equal(await backend.getById(record.id), null);
        // Reporting is optional; what is reported must be exactly what went.
        if (reported.length > 0) {
          assert.deepEqual(ids(reported), ids(present));
          for (const { id, keyHash } of reported) assert.equal(keyHash, records.find((r) => r.id === id)!.keyHash);
        }
      });

      it('follows updates of the expiry and revocation, and counts each record once when purges race', async (context?: unknown) => {
        if (!backend.purge) return skipped(context);
        const extended = makeApiKeyRecord({ expiresAt: at(1992, 0) });
        const shortened = makeApiKeyRecord({ expiresAt: null });
        const revoked = makeApiKeyRecord();
        for (const record of [extended, shortened, revoked]) await backend.create(record);
        const now = new Date();
        const extensible = (await stored([extended])).length === 1;
        if (extensible) await backend.update(extended.id, { expiresAt: new Date(Date.now() + 86_400_000), updatedAt: now });
        await backend.update(shortened.id, { expiresAt: at(1992, 1), updatedAt: now });
        await backend.update(revoked.id, { revokedAt: at(1992, 2), updatedAt: now });
        const purgeable = await stored([shortened, revoked]);
        assert.equal(await backend.purge({ expiredBefore: at(1992, 6), revokedBefore: at(1992, 6), limit: 10 }), purgeable.length);
        if (extensible) assert.ok(await backend.getById(extended.id), 'a key whose expiry moved to the future stays');
        assert.equal(await backend.getById(shortened.id), null);
        assert.equal(await backend.getById(revoked.id), null);

        const many = Array.from({ length: 20 }, (_, i) => makeApiKeyRecord({ expiresAt: new Date(at(1993, 0).getTime() + i) }));
        for (const record of many) await backend.create(record);
        const left = (await stored(many)).length;
        const counts = await Promise.all(Array.from({ length: 4 }, () => backend.purge!({ expiredBefore: at(1993, 6), limit: 10 })));
        let total = counts.reduce((a, b) => a + b, 0);
        // A purge that found its rows taken by another may come back short; the next call finds the rest.
        for (let more = 1; more > 0; total += more) more = await backend.purge({ expiredBefore: at(1993, 6), limit: 10 });
        assert.equal(total, left);
      });
    });

    describe('replaceHash (optional: moves a key to a new hash, for pepper rotation)', () => {
      it('moves the record and its hash index, keeping version and every other field', async (context?: unknown) => {
        if (!backend.replaceHash) return skipped(context);
        const record = makeApiKeyRecord({ expiresAt: new Date(Date.now() + 86_400_000) });
        await backend.create(record);
        const toHash = makeApiKeyRecord().keyHash;
        // Read both first, so a cache holds the record under the old hash and the new one as unknown.
        assert.equal((await backend.getByHash(record.keyHash))?.id, record.id);
        assert.equal(await backend.getByHash(toHash), null);
        assert.equal(await backend.replaceHash(record.id, record.keyHash, toHash), true);
        const moved = { ...record, keyHash: toHash };
        assertSameRecord(await backend.getByHash(toHash), moved);
        assertSameRecord(await backend.getById(record.id), moved);
        assert.equal(await backend.getByHash(record.keyHash), null);
        assert.deepEqual((await collect(backend.listByOwner(record.ownerId))).map((r) => r.keyHash), [toHash]);
        // Done already, or never applicable: false, nothing changes.
        assert.equal(await backend.replaceHash(record.id, record.keyHash, toHash), false);
        assert.equal(await backend.replaceHash(record.id, makeApiKeyRecord().keyHash, makeApiKeyRecord().keyHash), false);
        assert.equal(await backend.replaceHash(randomUUID(), toHash, makeApiKeyRecord().keyHash), false);
        // The id index followed: writes by id reach the record under its new hash.
        const updated = await backend.update(record.id, { name: 'renamed', updatedAt: record.updatedAt });
        assertSameRecord(updated, { ...moved, name: 'renamed', version: 2 });
        await backend.delete(record.id);
        assert.equal(await backend.getByHash(toHash), null);
      });

      it('refuses a hash another record holds, and lets exactly one of racing calls win', async (context?: unknown) => {
        if (!backend.replaceHash) return skipped(context);
        const a = makeApiKeyRecord();
        const b = makeApiKeyRecord();
        await backend.create(a);
        await backend.create(b);
        await assert.rejects(backend.replaceHash(a.id, a.keyHash, b.keyHash), (error: unknown) => {
          assert.ok(error instanceof DuplicateApiKeyError);
          assert.equal(error.field, 'keyHash');
          return true;
        });
        assertSameRecord(await backend.getByHash(a.keyHash), a);
        assertSameRecord(await backend.getByHash(b.keyHash), b);

        const toHash = makeApiKeyRecord().keyHash;
        const results = await Promise.all(Array.from({ length: concurrency }, () => backend.replaceHash!(a.id, a.keyHash, toHash)));
        assert.equal(results.filter(Boolean).length, 1);
        assertSameRecord(await backend.getByHash(toHash), { ...a, keyHash: toHash });
      });
    });

    it('stores concurrent creates of distinct records, and exactly one of racing duplicates', async () => {
      const ownerId = `owner-${randomUUID()}`;
      const records = Array.from({ length: concurrency }, () => makeApiKeyRecord({ ownerId }));
      await Promise.all(records.map((r) => backend.create(r)));
      const listed = await collect(backend.listByOwner(ownerId));
      assert.equal(listed.length, concurrency);
      assert.equal(new Set(listed.map((r) => r.id)).size, concurrency);

      const contested = makeApiKeyRecord();
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, () => backend.create({ ...contested, keyHash: makeApiKeyRecord().keyHash })),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) {
        if (r.status === 'rejected') {
          assert.ok(r.reason instanceof DuplicateApiKeyError, String(r.reason));
          // `rotate` tells a lost race from a hash collision by this field.
          assert.equal(r.reason.field, 'id');
        }
      }
    });
  });
}
