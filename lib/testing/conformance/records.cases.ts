import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DuplicateApiKeyError } from '../../api-key.errors.js';
import type { ApiKey } from '../../api-key.interface.js';
import type { ApiKeyBackend } from '../../backends/backend.interface.js';
import type { BackendConformanceOptions, ConformanceSuite, TestFn } from './conformance-options.js';
import { assertSameRecord, makeApiKeyRecord } from './record-fixtures.js';

/** Create and read: every field intact, copies, duplicates refused. */
export function recordCases<B extends ApiKeyBackend>(it: TestFn, suite: ConformanceSuite<B>, _options: BackendConformanceOptions<B>): void {
  it('creates a record and reads it back by id and by hash, every field intact', async () => {
    const record = makeApiKeyRecord({
      expiresAt: new Date(Date.now() + 86_400_000),
      lastUsedAt: new Date(Date.now() - 5_000),
      rotatedFromId: randomUUID(),
    });
    const created = await suite.backend.create(record);
    assertSameRecord(created, record);
    assertSameRecord(await suite.backend.getById(record.id), record);
    assertSameRecord(await suite.backend.getByHash(record.keyHash), record);
  });

  it('keeps empty scopes, empty metadata and null dates as they are', async () => {
    const record = makeApiKeyRecord({ scopes: [], metadata: {} });
    await suite.backend.create(record);
    assertSameRecord(await suite.backend.getById(record.id), record);
  });

  it('stores environment and policy (JSON), updates the policy, and clears it back to null', async () => {
    const policy = {
      rateLimits: [{ name: 'burst', limit: 5, windowMs: 1_000 }],
      quota: { limit: 1_000, refillIntervalMs: 86_400_000 },
      allowedIps: ['203.0.113.7', '10.0.0.0/8', '2001:db8::/32'],
      counterKey: randomUUID(),
    };
    const record = makeApiKeyRecord({ environment: 'live', policy });
    assertSameRecord(await suite.backend.create(record), record);
    assertSameRecord(await suite.backend.getById(record.id), record);
    assertSameRecord(await suite.backend.getByHash(record.keyHash), record);

    const updatedAt = new Date(record.updatedAt.getTime() + 1_000);
    const changed: ApiKey = { ...record, policy: { quota: { limit: 3 } }, updatedAt, version: 2 };
    assertSameRecord(await suite.backend.update(record.id, { policy: { quota: { limit: 3 } }, updatedAt }), changed);
    assertSameRecord(await suite.backend.getByHash(record.keyHash), changed);

    const cleared: ApiKey = { ...changed, policy: null, version: 3 };
    assertSameRecord(await suite.backend.update(record.id, { policy: null, updatedAt }), cleared);
    assertSameRecord(await suite.backend.getById(record.id), cleared);
  });

  it('defaults environment and policy to null', async () => {
    const record = makeApiKeyRecord();
    await suite.backend.create(record);
    const read = await suite.backend.getByHash(record.keyHash);
    assert.equal(read?.environment, null);
    assert.equal(read?.policy, null);
  });

  it('answers null for an unknown id or hash', async () => {
    assert.equal(await suite.backend.getById(randomUUID()), null);
    assert.equal(await suite.backend.getByHash(makeApiKeyRecord().keyHash), null);
  });

  it('rejects a duplicate id or hash with DuplicateApiKeyError and keeps the original', async () => {
    const original = makeApiKeyRecord();
    await suite.backend.create(original);
    await assert.rejects(suite.backend.create(makeApiKeyRecord({ id: original.id })), (error: unknown) => {
      assert.ok(error instanceof DuplicateApiKeyError, `expected DuplicateApiKeyError, got ${String(error)}`);
      assert.equal(error.field, 'id');
      return true;
    });
    await assert.rejects(suite.backend.create(makeApiKeyRecord({ keyHash: original.keyHash })), (error: unknown) => {
      assert.ok(error instanceof DuplicateApiKeyError, `expected DuplicateApiKeyError, got ${String(error)}`);
      assert.equal(error.field, 'keyHash');
      assert.ok(!error.message.includes(original.keyHash), 'the message must not contain the hash');
      return true;
    });
    assertSameRecord(await suite.backend.getById(original.id), original);
  });

  it('returns copies: mutating inputs or results changes nothing stored', async () => {
    const record = makeApiKeyRecord();
    const created = await suite.backend.create(record);
    record.scopes.push('mutated-input');
    (record.metadata as { plan: string }).plan = 'mutated';
    created.scopes.push('mutated-output');
    const read = await suite.backend.getById(record.id);
    assert.ok(read);
    assert.deepEqual(read.scopes, ['read', 'write:things']);
    assert.equal(read.metadata.plan, 'pro');
    read.name = 'changed locally';
    assert.equal((await suite.backend.getByHash(record.keyHash))?.name, 'conformance key');
  });

  it('stores version and issuedById as given at create', async () => {
    const issuer = makeApiKeyRecord();
    const record = makeApiKeyRecord({ ownerId: issuer.ownerId, issuedById: issuer.id, version: 1 });
    assertSameRecord(await suite.backend.create(record), record);
    assertSameRecord(await suite.backend.getById(record.id), record);
    assertSameRecord(await suite.backend.getByHash(record.keyHash), record);
  });
}
