import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import type { ApiKey } from '../../api-key.interface.js';
import type { ApiKeyBackend, ListAllOptions } from '../../backends/backend.interface.js';
import { compareNewestFirst } from '../../backends/key-status.js';
import type { ConformanceSuite, TestFn } from './conformance-options.js';
import { makeApiKeyRecord } from './record-fixtures.js';

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Marks a case that does not apply to this backend as skipped where the runner can. */
function skipped(context: unknown): void {
  const skip = (context as { skip?: (note?: string) => void } | undefined)?.skip;
  if (typeof skip === 'function') skip('not implemented by this backend');
}

const ids = (records: ApiKey[]) => records.map((r) => r.id);

/**
 * The contract's cases for `disabledAt` (every backend) and the optional `listAll`
 * (skipped where the backend lacks it), in `describe` blocks of their own.
 */
export function statusCases<B extends ApiKeyBackend>(
  describe: (name: string, fn: () => void) => unknown,
  it: TestFn,
  suite: ConformanceSuite<B>,
): void {
  const backendOf = () => suite.backend;

  describe('disabledAt', () => {
    it('stores disabledAt at create and reads it back by id, by hash and in listings', async () => {
      const disabledAt = new Date(Math.floor(Date.now() / 1000) * 1000 + 7);
      const record = makeApiKeyRecord({ disabledAt });
      await backendOf().create(record);
      assert.deepEqual((await backendOf().getById(record.id))?.disabledAt, disabledAt);
      assert.deepEqual((await backendOf().getByHash(record.keyHash))?.disabledAt, disabledAt);
      assert.deepEqual((await collect(backendOf().listByOwner(record.ownerId)))[0]?.disabledAt, disabledAt);
    });

    it('sets and clears disabledAt by update (not sticky, unlike revokedAt), one version each, other fields kept', async () => {
      const backend = backendOf();
      const record = makeApiKeyRecord();
      await backend.create(record);
      const at = new Date(Math.floor(Date.now() / 1000) * 1000 + 42);
      const disabled = await backend.update(record.id, { disabledAt: at, updatedAt: at }, { expectedVersion: 1 });
      assert.deepEqual(disabled.disabledAt, at);
      assert.equal(disabled.version, 2);
      assert.deepEqual((await backend.getByHash(record.keyHash))?.disabledAt, at);
      const enabled = await backend.update(record.id, { disabledAt: null, updatedAt: at }, { expectedVersion: 2 });
      assert.equal(enabled.disabledAt, null);
      assert.equal(enabled.version, 3);
      assert.deepEqual({ ...enabled, updatedAt: record.updatedAt, version: 1 }, record);
      assert.equal((await backend.getByHash(record.keyHash))?.disabledAt, null);
    });

    it('keeps disabledAt when another field is updated, and a revoke leaves it as it was', async () => {
      const backend = backendOf();
      const at = new Date(Math.floor(Date.now() / 1000) * 1000 + 5);
      const record = makeApiKeyRecord({ disabledAt: at });
      await backend.create(record);
      await backend.update(record.id, { name: 'renamed', updatedAt: at });
      const revoked = await backend.update(record.id, { revokedAt: at, updatedAt: at });
      assert.deepEqual(revoked.disabledAt, at);
      assert.deepEqual(revoked.revokedAt, at);
      assert.equal(revoked.name, 'renamed');
    });
  });

  describe('listAll (when implemented)', () => {
    /** Records of this case only: tagged with an environment no other case uses. */
    async function seed(count: number, overrides: (i: number) => Partial<ApiKey>): Promise<{ environment: string; records: ApiKey[] }> {
      // Short: PostgreSQL's column holds 16 characters.
      const environment = `c${randomBytes(5).toString('hex')}`;
      const base = Math.floor(Date.now() / 1000) * 1000;
      const owners = [`owner-${randomUUID()}`, `owner-${randomUUID()}`, `owner-${randomUUID()}`];
      const records: ApiKey[] = [];
      for (let i = 0; i < count; i++) {
        // Pairs share a createdAt, so the order falls back to the id.
        const createdAt = new Date(base - Math.floor(i / 2) * 1000);
        const record = makeApiKeyRecord({ ownerId: owners[i % 3]!, environment, createdAt, updatedAt: createdAt, ...overrides(i) });
        await backendOf().create(record);
        records.push(record);
      }
      return { environment, records };
    }

    it('lists every owner\'s records newest first (createdAt, then id, descending), paged by after and limit', async (context?: unknown) => {
      const backend = backendOf();
      if (!backend.listAll) return skipped(context);
      const { environment, records } = await seed(9, () => ({}));
      const expected = [...records].sort(compareNewestFirst);
      const now = new Date();
      const all = await collect(backend.listAll({ environment, now }));
      assert.deepEqual(ids(all), ids(expected));
      for (const record of all) assert.deepEqual(record, records.find((r) => r.id === record.id));
      const first = await collect(backend.listAll({ environment, now, limit: 4 }));
      assert.deepEqual(ids(first), ids(expected.slice(0, 4)));
      const rest = await collect(backend.listAll({ environment, now, after: first[3]! }));
      assert.deepEqual(ids(rest), ids(expected.slice(4)));
      const owner = records[1]!.ownerId;
      assert.deepEqual(ids(await collect(backend.listAll({ environment, now, ownerId: owner }))), ids(expected.filter((r) => r.ownerId === owner)));
      assert.deepEqual(await collect(backend.listAll({ ownerId: `owner-${randomUUID()}`, now })), []);
    });

    it('filters by status at `now`: revoked over disabled over expired over active', async (context?: unknown) => {
      const backend = backendOf();
      if (!backend.listAll) return skipped(context);
      // Judged at an instant two hours ahead, so no expiry here has passed in real time:
      // a store may drop really expired records (RedisBackend's `expireRecords`).
      const now = new Date(Math.floor(Date.now() / 1000) * 1000 + 2 * 3_600_000);
      const past = new Date(now.getTime() - 3_600_000);
      const future = new Date(now.getTime() + 3_600_000);
      const states: Array<[string, Partial<ApiKey>]> = [
        ['active', {}],
        ['active', { expiresAt: future }],
        ['expired', { expiresAt: past }],
        ['expired', { expiresAt: now }],
        ['disabled', { disabledAt: past }],
        ['disabled', { disabledAt: past, expiresAt: past }],
        ['revoked', { revokedAt: past }],
        ['revoked', { revokedAt: past, disabledAt: past, expiresAt: past }],
      ];
      const { environment, records } = await seed(states.length, (i) => states[i]![1]);
      for (const status of ['active', 'expired', 'disabled', 'revoked'] as const) {
        const listed: ApiKey[] = await collect(backend.listAll({ environment, status, now } satisfies ListAllOptions));
        const expected = records.filter((_, i) => states[i]![0] === status).sort(compareNewestFirst);
        assert.deepEqual(ids(listed), ids(expected), status);
      }
      const limited = await collect(backend.listAll({ environment, status: 'revoked', now, limit: 1 }));
      assert.equal(limited.length, 1);
    });

    it('forgets deleted records', async (context?: unknown) => {
      const backend = backendOf();
      if (!backend.listAll) return skipped(context);
      const { environment, records } = await seed(4, () => ({}));
      await backend.delete(records[0]!.id);
      const listed = await collect(backend.listAll({ environment, now: new Date() }));
      assert.deepEqual(ids(listed), ids(records.slice(1).sort(compareNewestFirst)));
    });
  });
}
