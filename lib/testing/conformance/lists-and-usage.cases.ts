import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DuplicateApiKeyError, VersionConflictError } from '../../api-key.errors.js';
import type { ApiKey } from '../../api-key.interface.js';
import type { ApiKeyBackend } from '../../backends/backend.interface.js';
import type { BackendConformanceOptions, ConformanceSuite, TestFn } from './conformance-options.js';
import { assertSameRecord, collect, makeApiKeyRecord, skipped } from './record-fixtures.js';

/** Delete, listing by owner and issuer, usage writes, legacy records, concurrent creates. */
export function listAndUsageCases<B extends ApiKeyBackend>(it: TestFn, suite: ConformanceSuite<B>, options: BackendConformanceOptions<B>): void {
  const concurrency = options.concurrency ?? 50;
  it('deletes the record and its index entries; deleting again or a missing id resolves', async () => {
    const record = makeApiKeyRecord();
    await suite.backend.create(record);
    await suite.backend.delete(record.id);
    assert.equal(await suite.backend.getById(record.id), null);
    assert.equal(await suite.backend.getByHash(record.keyHash), null);
    assert.deepEqual(await collect(suite.backend.listByOwner(record.ownerId)), []);
    await suite.backend.delete(record.id);
    await suite.backend.delete(randomUUID());
    // The hash is free again: a new record may use it.
    await suite.backend.create(makeApiKeyRecord({ keyHash: record.keyHash }));
  });

  it('lists an owner\'s records by createdAt then id, resumes after a cursor, honours limit', async () => {
    const ownerId = `owner-${randomUUID()}`;
    const base = Math.floor(Date.now() / 1000) * 1000;
    const records = Array.from({ length: 7 }, (_, i) =>
      makeApiKeyRecord({ ownerId, createdAt: new Date(base + (i % 3) * 1000), updatedAt: new Date(base) }),
    );
    for (const record of records) await suite.backend.create(record);
    await suite.backend.create(makeApiKeyRecord()); // another owner
    const expected = [...records].sort(
      (a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    const all = await collect(suite.backend.listByOwner(ownerId));
    assert.deepEqual(all.map((r) => r.id), expected.map((r) => r.id));
    const firstThree = await collect(suite.backend.listByOwner(ownerId, { limit: 3 }));
    assert.deepEqual(firstThree.map((r) => r.id), expected.slice(0, 3).map((r) => r.id));
    const rest = await collect(suite.backend.listByOwner(ownerId, { after: firstThree[2]! }));
    assert.deepEqual(rest.map((r) => r.id), expected.slice(3).map((r) => r.id));
    assert.deepEqual(await collect(suite.backend.listByOwner(`owner-${randomUUID()}`)), []);
    if (suite.backend.countByOwner) assert.equal(await suite.backend.countByOwner(ownerId), 7);
  });

  it('lists the records a key issued (listByIssuer, when implemented), and forgets deleted ones', async (context?: unknown) => {
    if (!suite.backend.listByIssuer) return skipped(context);
    const issuer = makeApiKeyRecord();
    await suite.backend.create(issuer);
    const issued = Array.from({ length: 5 }, () => makeApiKeyRecord({ ownerId: issuer.ownerId, issuedById: issuer.id }));
    for (const record of issued) await suite.backend.create(record);
    await suite.backend.create(makeApiKeyRecord({ ownerId: issuer.ownerId }));
    await suite.backend.create(makeApiKeyRecord({ issuedById: randomUUID() }));
    const ids = (records: ApiKey[]) => records.map((r) => r.id).sort();
    const listed = await collect(suite.backend.listByIssuer(issuer.id));
    assert.deepEqual(ids(listed), ids(issued));
    for (const record of listed) assertSameRecord(record, issued.find((r) => r.id === record.id)!);
    await suite.backend.delete(issued[0]!.id);
    assert.deepEqual(ids(await collect(suite.backend.listByIssuer(issuer.id))), ids(issued.slice(1)));
    assert.deepEqual(await collect(suite.backend.listByIssuer(randomUUID())), []);
  });

  it('records usage only when lastUsedAt is null or older than staleBefore, touching nothing else', async () => {
    const record = makeApiKeyRecord();
    await suite.backend.create(record);
    const t0 = new Date(Math.floor(Date.now() / 1000) * 1000);
    assert.equal(await suite.backend.recordUsage(record.id, t0, new Date(t0.getTime() - 60_000)), true);
    assert.deepEqual((await suite.backend.getById(record.id))?.lastUsedAt, t0);
    const t1 = new Date(t0.getTime() + 10_000);
    assert.equal(await suite.backend.recordUsage(record.id, t1, new Date(t1.getTime() - 60_000)), false);
    assert.deepEqual((await suite.backend.getById(record.id))?.lastUsedAt, t0);
    const t2 = new Date(t0.getTime() + 61_000);
    assert.equal(await suite.backend.recordUsage(record.id, t2, new Date(t2.getTime() - 60_000)), true);
    const after = await suite.backend.getById(record.id);
    assertSameRecord(after, { ...record, lastUsedAt: t2 });
    assert.equal(await suite.backend.recordUsage(randomUUID(), t2, t2), false);
  });

  it('keeps a revocation when usage writes race it', async () => {
    const record = makeApiKeyRecord();
    await suite.backend.create(record);
    const revokedAt = new Date();
    const usage = Array.from({ length: concurrency }, (_, i) => {
      const at = new Date(Date.now() + i);
      return suite.backend.recordUsage(record.id, at, at);
    });
    await Promise.all([...usage, suite.backend.update(record.id, { revokedAt, updatedAt: revokedAt })]);
    const after = await suite.backend.getByHash(record.keyHash);
    assert.ok(after?.revokedAt, 'the key must stay revoked');
  });

  it('reads a record stored before versions existed as version 1 without issuer, and updates it', async (context?: unknown) => {
    if (!options.storeLegacyRecord) return skipped(context);
    const { version: _version, issuedById: _issuedById, disabledAt: _disabledAt, ...legacy } = makeApiKeyRecord();
    await options.storeLegacyRecord(suite.backend, legacy);
    const expected: ApiKey = { ...legacy, version: 1, issuedById: null, disabledAt: null };
    assertSameRecord(await suite.backend.getById(legacy.id), expected);
    assertSameRecord(await suite.backend.getByHash(legacy.keyHash), expected);
    assert.deepEqual((await collect(suite.backend.listByOwner(legacy.ownerId))).map((r) => r.version), [1]);
    await assert.rejects(suite.backend.update(legacy.id, { name: 'x', updatedAt: legacy.updatedAt }, { expectedVersion: 2 }), VersionConflictError);
    const updated = await suite.backend.update(legacy.id, { name: 'renamed', updatedAt: legacy.updatedAt }, { expectedVersion: 1 });
    assertSameRecord(updated, { ...expected, name: 'renamed', version: 2 });
    assertSameRecord(await suite.backend.getByHash(legacy.keyHash), { ...expected, name: 'renamed', version: 2 });
  });

  it('stores concurrent creates of distinct records, and exactly one of racing duplicates', async () => {
    const ownerId = `owner-${randomUUID()}`;
    const records = Array.from({ length: concurrency }, () => makeApiKeyRecord({ ownerId }));
    await Promise.all(records.map((r) => suite.backend.create(r)));
    const listed = await collect(suite.backend.listByOwner(ownerId));
    assert.equal(listed.length, concurrency);
    assert.equal(new Set(listed.map((r) => r.id)).size, concurrency);

    const contested = makeApiKeyRecord();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => suite.backend.create({ ...contested, keyHash: makeApiKeyRecord().keyHash })),
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
}
