import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DuplicateApiKeyError } from '../../api-key.errors.js';
import type { ApiKeyBackend } from '../../backends/backend.interface.js';
import type { BackendConformanceOptions, ConformanceSuite, TestFn } from './conformance-options.js';
import { assertSameRecord, collect, makeApiKeyRecord, skipped } from './record-fixtures.js';

/** The optional `replaceHash` of pepper rotation: a compare-and-set of the key hash. Skipped without it. */
export function replaceHashCases<B extends ApiKeyBackend>(it: TestFn, suite: ConformanceSuite<B>, options: BackendConformanceOptions<B>): void {
  const concurrency = options.concurrency ?? 50;
  it('moves the record and its hash index, keeping version and every other field', async (context?: unknown) => {
    if (!suite.backend.replaceHash) return skipped(context);
    const record = makeApiKeyRecord({ expiresAt: new Date(Date.now() + 86_400_000) });
    await suite.backend.create(record);
    const toHash = makeApiKeyRecord().keyHash;
    // Read both first, so a cache holds the record under the old hash and the new one as unknown.
    assert.equal((await suite.backend.getByHash(record.keyHash))?.id, record.id);
    assert.equal(await suite.backend.getByHash(toHash), null);
    assert.equal(await suite.backend.replaceHash(record.id, record.keyHash, toHash), true);
    const moved = { ...record, keyHash: toHash };
    assertSameRecord(await suite.backend.getByHash(toHash), moved);
    assertSameRecord(await suite.backend.getById(record.id), moved);
    assert.equal(await suite.backend.getByHash(record.keyHash), null);
    assert.deepEqual((await collect(suite.backend.listByOwner(record.ownerId))).map((r) => r.keyHash), [toHash]);
    // Done already, or never applicable: false, nothing changes.
    assert.equal(await suite.backend.replaceHash(record.id, record.keyHash, toHash), false);
    assert.equal(await suite.backend.replaceHash(record.id, makeApiKeyRecord().keyHash, makeApiKeyRecord().keyHash), false);
    assert.equal(await suite.backend.replaceHash(randomUUID(), toHash, makeApiKeyRecord().keyHash), false);
    // The id index followed: writes by id reach the record under its new hash.
    const updated = await suite.backend.update(record.id, { name: 'renamed', updatedAt: record.updatedAt });
    assertSameRecord(updated, { ...moved, name: 'renamed', version: 2 });
    await suite.backend.delete(record.id);
    assert.equal(await suite.backend.getByHash(toHash), null);
  });

  it('refuses a hash another record holds, and lets exactly one of racing calls win', async (context?: unknown) => {
    if (!suite.backend.replaceHash) return skipped(context);
    const a = makeApiKeyRecord();
    const b = makeApiKeyRecord();
    await suite.backend.create(a);
    await suite.backend.create(b);
    await assert.rejects(suite.backend.replaceHash(a.id, a.keyHash, b.keyHash), (error: unknown) => {
      assert.ok(error instanceof DuplicateApiKeyError);
      assert.equal(error.field, 'keyHash');
      return true;
    });
    assertSameRecord(await suite.backend.getByHash(a.keyHash), a);
    assertSameRecord(await suite.backend.getByHash(b.keyHash), b);

    const toHash = makeApiKeyRecord().keyHash;
    const results = await Promise.all(Array.from({ length: concurrency }, () => suite.backend.replaceHash!(a.id, a.keyHash, toHash)));
    assert.equal(results.filter(Boolean).length, 1);
    assertSameRecord(await suite.backend.getByHash(toHash), { ...a, keyHash: toHash });
  });
}
