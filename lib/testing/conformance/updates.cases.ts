import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ApiKeyNotFoundError, VersionConflictError } from '../../api-key.errors.js';
import type { ApiKey } from '../../api-key.interface.js';
import type { ApiKeyBackend } from '../../backends/backend.interface.js';
import type { BackendConformanceOptions, ConformanceSuite, TestFn } from './conformance-options.js';
import { assertSameRecord, makeApiKeyRecord } from './record-fixtures.js';

/** Partial, versioned, atomic updates; sticky revocation; no lost update. */
export function updateCases<B extends ApiKeyBackend>(it: TestFn, suite: ConformanceSuite<B>, options: BackendConformanceOptions<B>): void {
  it('updates only the given fields, bumps version by 1 and answers the stored record', async () => {
    const record = makeApiKeyRecord({ expiresAt: new Date(Date.now() + 86_400_000), policy: { quota: { limit: 9 } } });
    await suite.backend.create(record);
    const expiresAt = new Date(Date.now() + 3_600_000);
    const updatedAt = new Date(record.updatedAt.getTime() + 1_000);
    const changes = { name: 'renamed', scopes: ['admin'], metadata: { tier: 2 }, expiresAt, updatedAt };
    const expected: ApiKey = { ...record, ...changes, version: 2 };
    assertSameRecord(await suite.backend.update(record.id, changes), expected);
    assertSameRecord(await suite.backend.getById(record.id), expected);
    assertSameRecord(await suite.backend.getByHash(record.keyHash), expected);

    // Clearing to null, and leaving out (or passing undefined for) the rest.
    const later = new Date(updatedAt.getTime() + 1_000);
    const cleared: ApiKey = { ...expected, expiresAt: null, updatedAt: later, version: 3 };
    assertSameRecord(await suite.backend.update(record.id, { expiresAt: null, name: undefined, updatedAt: later }), cleared);
    assertSameRecord(await suite.backend.getByHash(record.keyHash), cleared);
  });

  it('keeps fields it was not given as another writer left them', async () => {
    const record = makeApiKeyRecord({ metadata: { n: 0 } });
    await suite.backend.create(record);
    const t = record.updatedAt;
    await suite.backend.update(record.id, { scopes: ['fewer'], policy: { quota: { limit: 1 } }, updatedAt: t });
    // A writer that read the record before the first update, changing only metadata.
    const after = await suite.backend.update(record.id, { metadata: { n: 1 }, updatedAt: t });
    assert.deepEqual(after.scopes, ['fewer']);
    assert.deepEqual(after.policy, { quota: { limit: 1 } });
    assert.deepEqual(after.metadata, { n: 1 });
    assert.equal(after.version, 3);
  });

  it('does not bump version on recordUsage', async () => {
    const record = makeApiKeyRecord();
    await suite.backend.create(record);
    const now = new Date();
    assert.equal(await suite.backend.recordUsage(record.id, now, now), true);
    assert.equal((await suite.backend.getById(record.id))?.version, 1);
    assert.equal((await suite.backend.update(record.id, { name: 'n', updatedAt: now })).version, 2);
  });

  it('with expectedVersion, writes only at that version; a conflict writes nothing', async () => {
    const record = makeApiKeyRecord();
    await suite.backend.create(record);
    const t = record.updatedAt;
    const first = await suite.backend.update(record.id, { name: 'first', updatedAt: t }, { expectedVersion: 1 });
    assert.equal(first.version, 2);
    await assert.rejects(suite.backend.update(record.id, { name: 'stale', revokedAt: new Date(), updatedAt: new Date() }, { expectedVersion: 1 }), (error: unknown) => {
      assert.ok(error instanceof VersionConflictError, `expected VersionConflictError, got ${String(error)}`);
      assert.equal(error.expectedVersion, 1);
      assert.equal(error.actualVersion, 2);
      return true;
    });
    assertSameRecord(await suite.backend.getById(record.id), first);
    assertSameRecord(await suite.backend.getByHash(record.keyHash), first);
    assert.equal((await suite.backend.update(record.id, { name: 'second', updatedAt: t }, { expectedVersion: 2 })).version, 3);
  });

  it('of racing writers pinned to one version, exactly one wins', async () => {
    const record = makeApiKeyRecord();
    await suite.backend.create(record);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => suite.backend.update(record.id, { name: `writer ${i}`, updatedAt: new Date() }, { expectedVersion: 1 })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof VersionConflictError, String(r.reason));
    const stored = await suite.backend.getById(record.id);
    assert.equal(stored?.version, 2);
    assert.equal(stored?.name, (won[0] as PromiseFulfilledResult<ApiKey>).value.name);
  });

  it('rejects an update of a missing id with ApiKeyNotFoundError', async () => {
    await assert.rejects(suite.backend.update(randomUUID(), { name: 'x', updatedAt: new Date() }), ApiKeyNotFoundError);
    await assert.rejects(suite.backend.update(randomUUID(), { name: 'x', updatedAt: new Date() }, { expectedVersion: 1 }), ApiKeyNotFoundError);
  });

  it('keeps the first revokedAt: a later revokedAt is ignored, the rest of the update applies', async () => {
    const record = makeApiKeyRecord();
    await suite.backend.create(record);
    const revokedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    const revoked = await suite.backend.update(record.id, { revokedAt, updatedAt: revokedAt });
    assert.deepEqual(revoked.revokedAt, revokedAt);
    const again = await suite.backend.update(record.id, { name: 'later writer', revokedAt: new Date(revokedAt.getTime() + 5_000), updatedAt: revokedAt });
    assert.deepEqual(again.revokedAt, revokedAt);
    assert.equal(again.name, 'later writer');
    assert.equal(again.version, 3);
    assert.deepEqual((await suite.backend.getByHash(record.keyHash))?.revokedAt, revokedAt);
  });

  it('keeps both of concurrent updates of different fields, every time', async () => {
    const pairs = options.updatePairs ?? 200;
    const record = makeApiKeyRecord({ metadata: { n: -1 } });
    await suite.backend.create(record);
    const lost: string[] = [];
    for (let i = 0; i < pairs; i++) {
      const t = new Date();
      const scopes = [`scope-${i}`];
      const [, b] = await Promise.all([
        suite.backend.update(record.id, { metadata: { n: i }, updatedAt: t }),
        suite.backend.update(record.id, { scopes, policy: { quota: { limit: i + 1 } }, expiresAt: new Date(t.getTime() + 3_600_000 + i), updatedAt: t }),
      ]);
      const stored = await suite.backend.getById(record.id);
      if (stored?.metadata.n !== i || stored.scopes[0] !== scopes[0] || stored.policy?.quota?.limit !== i + 1) lost.push(`pair ${i}`);
      assert.ok(b.version >= 2 * i + 2);
    }
    assert.deepEqual(lost, [], 'no update may undo another');
    assert.equal((await suite.backend.getById(record.id))?.version, 1 + 2 * pairs);
  });
}
