import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { ApiKeyBackend } from '../../backends/backend.interface.js';
import type { ConformanceSuite, TestFn } from './conformance-options.js';
import { assertSameRecord, collect, makeApiKeyRecord, skipped } from './record-fixtures.js';

/** The optional `purge`: bounded, resumable deletes of expired and revoked records. Skipped without it. */
export function purgeCases<B extends ApiKeyBackend>(it: TestFn, suite: ConformanceSuite<B>): void {
  // Ancient instants, one year per case, so no other case's records ever match.
  const at = (year: number, month: number) => new Date(Date.UTC(year, month, 1));
  const ids = (records: Array<{ id: string }>) => records.map((r) => r.id).sort();
  /** The records still stored: a store may drop expired ones itself (RedisBackend's expireRecords). */
  const stored = async <R extends { id: string }>(records: R[]): Promise<R[]> => {
    const found = await Promise.all(records.map((r) => suite.backend.getById(r.id)));
    return records.filter((_, i) => found[i] !== null);
  };

  it('deletes only what each criterion names, with every index entry', async (context?: unknown) => {
    if (!suite.backend.purge) return skipped(context);
    const ownerId = `owner-${randomUUID()}`;
    const expiredEarly = makeApiKeyRecord({ ownerId, expiresAt: at(1990, 0) });
    const expiredLate = makeApiKeyRecord({ ownerId, expiresAt: at(1990, 9) });
    const revokedEarly = makeApiKeyRecord({ ownerId, revokedAt: at(1990, 1) });
    const revokedLate = makeApiKeyRecord({ ownerId, revokedAt: at(1990, 10) });
    const kept = makeApiKeyRecord({ ownerId });
    for (const record of [expiredEarly, expiredLate, revokedEarly, revokedLate, kept]) await suite.backend.create(record);
    const expired = await stored([expiredEarly, expiredLate]);
    // Read first, so a cache in front of the store holds them when they go.
    for (const record of [expiredEarly, revokedEarly]) await suite.backend.getByHash(record.keyHash);

    assert.equal(await suite.backend.purge({ expiredBefore: at(1990, 5), limit: 10 }), expired.includes(expiredEarly) ? 1 : 0);
    assert.equal(await suite.backend.getById(expiredEarly.id), null);
    assert.equal(await suite.backend.getByHash(expiredEarly.keyHash), null);
    assert.equal(await suite.backend.purge({ revokedBefore: at(1990, 5), limit: 10 }), 1);
    assert.equal(await suite.backend.getByHash(revokedEarly.keyHash), null);
    assert.deepEqual(ids(await collect(suite.backend.listByOwner(ownerId))), ids(await stored([expiredLate, revokedLate, kept])));

    const late = expired.includes(expiredLate) ? 1 : 0;
    assert.equal(await suite.backend.purge({ expiredBefore: at(1990, 11), revokedBefore: at(1990, 11), limit: 10 }), late + 1);
    assert.deepEqual(ids(await collect(suite.backend.listByOwner(ownerId))), ids([kept]));
    if (suite.backend.countByOwner) assert.equal(await suite.backend.countByOwner(ownerId), 1);
    if (suite.backend.listAll) {
      // Gone from the listing across owners too, not only from the owner's.
      const listed = new Set((await collect(suite.backend.listAll({ now: new Date() }))).map((r) => r.id));
      for (const record of [expiredEarly, expiredLate, revokedEarly, revokedLate]) assert.equal(listed.has(record.id), false);
      assert.equal(listed.has(kept.id), true);
    }
    assertSameRecord(await suite.backend.getByHash(kept.keyHash), kept);
    // The id and the hash are free again: nothing of the deleted records is left behind.
    await suite.backend.create({ ...expiredEarly, expiresAt: null });
    assert.equal((await suite.backend.getByHash(expiredEarly.keyHash))?.id, expiredEarly.id);
  });

  it('deletes at most `limit` per call and continues on the next call', async (context?: unknown) => {
    if (!suite.backend.purge) return skipped(context);
    const records = Array.from({ length: 7 }, (_, i) => makeApiKeyRecord({ expiresAt: new Date(at(1991, 0).getTime() + i) }));
    for (const record of records) await suite.backend.create(record);
    const present = await stored(records);
    const reported: Array<{ id: string; keyHash: string }> = [];
    const counts: number[] = [];
    for (let call = 0; call < 4; call++) {
      counts.push(await suite.backend.purge({ expiredBefore: at(1991, 6), limit: 3, onDeleted: (deleted) => reported.push(...deleted) }));
    }
    assert.deepEqual(counts, present.length === 0 ? [0, 0, 0, 0] : [3, 3, 1, 0]);
    for (const record of records) assert.equal(await suite.backend.getById(record.id), null);
    // Reporting is optional; what is reported must be exactly what went.
    if (reported.length > 0) {
      assert.deepEqual(ids(reported), ids(present));
      for (const { id, keyHash } of reported) assert.equal(keyHash, records.find((r) => r.id === id)!.keyHash);
    }
  });

  it('follows updates of the expiry and revocation, and counts each record once when purges race', async (context?: unknown) => {
    if (!suite.backend.purge) return skipped(context);
    const extended = makeApiKeyRecord({ expiresAt: at(1992, 0) });
    const shortened = makeApiKeyRecord({ expiresAt: null });
    const revoked = makeApiKeyRecord();
    for (const record of [extended, shortened, revoked]) await suite.backend.create(record);
    const now = new Date();
    const extensible = (await stored([extended])).length === 1;
    if (extensible) await suite.backend.update(extended.id, { expiresAt: new Date(Date.now() + 86_400_000), updatedAt: now });
    await suite.backend.update(shortened.id, { expiresAt: at(1992, 1), updatedAt: now });
    await suite.backend.update(revoked.id, { revokedAt: at(1992, 2), updatedAt: now });
    const purgeable = await stored([shortened, revoked]);
    assert.equal(await suite.backend.purge({ expiredBefore: at(1992, 6), revokedBefore: at(1992, 6), limit: 10 }), purgeable.length);
    if (extensible) assert.ok(await suite.backend.getById(extended.id), 'a key whose expiry moved to the future stays');
    assert.equal(await suite.backend.getById(shortened.id), null);
    assert.equal(await suite.backend.getById(revoked.id), null);

    const many = Array.from({ length: 20 }, (_, i) => makeApiKeyRecord({ expiresAt: new Date(at(1993, 0).getTime() + i) }));
    for (const record of many) await suite.backend.create(record);
    const left = (await stored(many)).length;
    const counts = await Promise.all(Array.from({ length: 4 }, () => suite.backend.purge!({ expiredBefore: at(1993, 6), limit: 10 })));
    let total = counts.reduce((a, b) => a + b, 0);
    // A purge that found its rows taken by another may come back short; the next call finds the rest.
    for (let more = 1; more > 0; total += more) more = await suite.backend.purge({ expiredBefore: at(1993, 6), limit: 10 });
    assert.equal(total, left);
  });
}
