import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuplicateApiKeyError, type ApiKey } from 'nestjs-api-auth';
import { RedisBackend, type RedisBackendOptions } from 'nestjs-api-auth/redis';
import { REDIS_LAYOUT_TEST_HOOKS } from '../../lib/redis/layout/redis-layout.v3.hooks.js';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { collect, layoutV3Backend, TestClock, visible, WriterCrashed } from '../fixtures/redis-layout-v3-crash.js';
import { connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';

// Each multi-step write of layout 3 stopped after each of its steps (the writer throws
// from the step hook and never runs the next step), then a fresh backend reads.
const GRACE = 60_000;

describe('RedisBackend layout 3: a writer stopped between steps', () => {
  let client: Awaited<ReturnType<typeof connectRedis>>;
  let namespace: string;
  let clock: TestClock;
  let reader: RedisBackend;
  const writer = (operation?: string, step?: number) =>
    layoutV3Backend(client, { namespace }, clock, operation === undefined ? undefined : { operation, step: step! });

  beforeAll(async () => {
    client = await connectRedis();
  });
  afterAll(async () => {
    await client.close();
  });
  const fresh = async () => {
    if (namespace) await deleteNamespace(client, namespace);
    namespace = uniqueNamespace('redis-v3-crash');
    clock = new TestClock();
    reader = writer();
  };
  afterAll(async () => {
    if (namespace) await deleteNamespace(client, namespace);
  });

  const crashed = (promise: Promise<unknown>) => expect(promise).rejects.toBeInstanceOf(WriterCrashed);

  describe('create', () => {
    for (const step of [1, 2, 3]) {
      it(`after step ${step}: ${step < 3 ? 'nothing is visible but a pending count' : 'the record is committed and whole'}; a retry succeeds`, async () => {
        await fresh();
        const record = makeApiKeyRecord({ issuedById: 'issuer-1', expiresAt: new Date(Date.now() + 3_600_000) });
        await crashed(writer('create', step).create(record));
        const seen = await visible(reader, record);
        if (step < 3) {
          expect(seen).toEqual({ byHash: [null], byId: null, listed: [], all: [], count: step === 1 ? 0 : 1 });
          expect(await collect(reader.listByIssuer('issuer-1'))).toEqual([]);
        } else {
          expect(seen).toEqual({ byHash: [record], byId: record, listed: [record], all: [record], count: 1 });
          expect(await collect(reader.listByIssuer('issuer-1'))).toEqual([record]);
        }
        // Within the grace period the id stays claimed: another create of it is refused.
        await expect(reader.create({ ...makeApiKeyRecord(), id: record.id })).rejects.toMatchObject({ field: 'id' });
        // The same create, retried, resumes and succeeds (a create is idempotent for the identical record).
        expect(await reader.create(record)).toEqual(record);
        expect(await visible(reader, record)).toEqual({ byHash: [record], byId: record, listed: [record], all: [record], count: 1 });
        expect(await collect(reader.listByIssuer('issuer-1'))).toEqual([record]);
        expect(await reader.purge({ expiredBefore: new Date(Date.now() + 7_200_000), limit: 10 })).toBe(1);
        expect(await scanKeys(client, namespace)).toEqual([]);
      });

      it(`after step ${step}, not retried: ${step < 3 ? 'readers remove the leftovers once the grace period is over, and the id is free again' : 'it stays committed'}`, async () => {
        await fresh();
        const record = makeApiKeyRecord({ issuedById: 'issuer-2' });
        await crashed(writer('create', step).create(record));
        // Listing within the grace period keeps the pending entry (a write may be in flight).
        await collect(reader.listByOwner(record.ownerId));
        expect(await reader.countByOwner(record.ownerId)).toBe(step === 1 ? 0 : 1);
        clock.advance(GRACE + 1);
        const seen = await visible(reader, record);
        await collect(reader.listByIssuer('issuer-2'));
        if (step < 3) {
          expect(seen).toMatchObject({ byHash: [null], byId: null, listed: [], all: [] });
          expect(await reader.countByOwner(record.ownerId)).toBe(0);
          // A create of the id with another key takes over the crashed claim.
          const other = { ...makeApiKeyRecord({ ownerId: record.ownerId }), id: record.id };
          expect(await reader.create(other)).toEqual(other);
          expect(await visible(reader, other, [other.keyHash, record.keyHash])).toEqual({
            byHash: [other, null],
            byId: other,
            listed: [other],
            all: [other],
            count: 1,
          });
          await reader.delete(other.id);
          // The issuer's entry was repaired by its listing; the pointer and entries went with the delete.
          expect(await scanKeys(client, namespace)).toEqual([]);
        } else {
          expect(seen).toEqual({ byHash: [record], byId: record, listed: [record], all: [record], count: 1 });
          await expect(reader.create({ ...makeApiKeyRecord(), id: record.id })).rejects.toBeInstanceOf(DuplicateApiKeyError);
        }
      });
    }

    it('a create stalled past the grace period before its commit loses the id to a later create, and takes its record back', async () => {
      await fresh();
      const stalled = makeApiKeyRecord();
      const later = { ...makeApiKeyRecord({ ownerId: stalled.ownerId }), id: stalled.id };
      // The stalled writer: after its entries (step 2), the grace period passes and another create of the id runs to its end.
      const stalledWriter = new RedisBackend(client, {
        namespace,
        layout: 3,
        [REDIS_LAYOUT_TEST_HOOKS]: {
          now: clock.now,
          afterStep: async (operation: string, step: number) => {
            if (operation !== 'create' || step !== 2) return;
            clock.advance(GRACE + 1);
            expect(await reader.create(later)).toEqual(later);
          },
        },
      } as RedisBackendOptions);
      await expect(stalledWriter.create(stalled)).rejects.toMatchObject({ field: 'id' });
      expect(await visible(reader, later, [later.keyHash, stalled.keyHash])).toEqual({
        byHash: [later, null],
        byId: later,
        listed: [later],
        all: [later],
        count: 1,
      });
    });

    it('a create losing on the hash leaves nothing reachable, and a crash in its undo is repaired by readers', async () => {
      await fresh();
      const holder = makeApiKeyRecord();
      await reader.create(holder);
      const loser = makeApiKeyRecord({ ownerId: holder.ownerId, keyHash: holder.keyHash });
      await expect(reader.create(loser)).rejects.toMatchObject({ field: 'keyHash' });
      expect(await reader.getById(loser.id)).toBeNull();
      expect(await collect(reader.listByOwner(holder.ownerId))).toEqual([holder]);
      expect(await reader.countByOwner(holder.ownerId)).toBe(1);
      // The same, but the writer dies before its undo: the loser's entry names a record
      // that is not its own, which listing never shows (and removes after the grace period).
      const crashedLoser = makeApiKeyRecord({ ownerId: holder.ownerId, keyHash: holder.keyHash });
      await crashed(
        layoutV3Backend(client, { namespace }, clock, { operation: 'create', step: 2 }).create(crashedLoser),
      );
      expect(await reader.getById(crashedLoser.id)).toBeNull();
      expect(await collect(reader.listByOwner(holder.ownerId))).toEqual([holder]);
      clock.advance(GRACE + 1);
      expect(await collect(reader.listByOwner(holder.ownerId))).toEqual([holder]);
      expect(await reader.countByOwner(holder.ownerId)).toBe(1);
    });
  });

  describe('update (revoke, with a new expiry)', () => {
    for (const step of [1, 2, 3]) {
      it(`after step ${step}: the record is ${step < 3 ? 'as before' : 'revoked'}, everywhere, and purge decides by the record`, async () => {
        await fresh();
        const record = makeApiKeyRecord({ expiresAt: new Date(Date.now() + 3_600_000) });
        await reader.create(record);
        const revokedAt = new Date(Date.now() - 1_000);
        const expiresAt = new Date(Date.now() + 7_200_000);
        await crashed(writer('update', step).update(record.id, { revokedAt, expiresAt, updatedAt: revokedAt }));
        const expected: ApiKey = step < 3 ? record : { ...record, revokedAt, expiresAt, updatedAt: revokedAt, version: 2 };
        expect(await visible(reader, record)).toEqual({ byHash: [expected], byId: expected, listed: [expected], all: [expected], count: 1 });
        // The purge index was given a lower bound before the commit: purge finds the key,
        // and deletes it only if the record itself is revoked.
        expect(await reader.purge({ revokedBefore: new Date(), limit: 10 })).toBe(step < 3 ? 0 : 1);
        expect(await reader.getById(record.id)).toEqual(step < 3 ? record : null);
      });
    }
  });

  describe('with expireRecords: the id pointer always outlives its record', () => {
    const expireTime = (key: string) => client.sendCommand(['PEXPIRETIME', key]).then(Number);
    const pointerOutlivesRecord = async (backend: RedisBackend, record: ApiKey) => {
      const [pointer, stored] = await Promise.all([
        expireTime(`${backend.keyPrefix}{i:${record.id}}`),
        expireTime(`${backend.keyPrefix}{h:${record.keyHash}}`),
      ]);
      // -1: no expiry (forever); a record with an expiry needs a pointer with none or a later one.
      if (stored !== -1) expect(pointer === -1 || pointer >= stored).toBe(true);
      else expect(pointer).toBe(-1);
    };
    for (const [label, from, to] of [
      ['moved later', 3_600_000, 7_200_000],
      ['moved earlier', 7_200_000, 3_600_000],
      ['removed', 3_600_000, null],
      ['added', null, 3_600_000],
    ] as const) {
      for (const step of [1, 2, 3]) {
        it(`an expiry ${label}, the writer stopped after step ${step}`, async () => {
          await fresh();
          const options = { namespace, expireRecords: true };
          const make = (create?: { operation: string; step: number }) => layoutV3Backend(client, options, clock, create);
          const record = makeApiKeyRecord({ expiresAt: from === null ? null : new Date(Date.now() + from) });
          await make().create(record);
          await pointerOutlivesRecord(reader, record);
          const expiresAt = to === null ? null : new Date(Date.now() + to);
          await make({ operation: 'update', step })
            .update(record.id, { expiresAt, updatedAt: new Date() })
            .catch((error: unknown) => {
              // A name-only update has no step 2: the writer then finishes.
              if (!(error instanceof WriterCrashed)) throw error;
            });
          await pointerOutlivesRecord(reader, record);
          expect((await make().getById(record.id))?.id).toBe(record.id);
        });
      }
    }
  });

  describe('delete', () => {
    for (const step of [1, 2]) {
      it(`after step ${step}: the key ${step < 2 ? 'is untouched' : 'no longer verifies, nor is listed; its entries are repaired when read'}; a retry cleans up`, async () => {
        await fresh();
        const record = makeApiKeyRecord({ issuedById: 'issuer-3', revokedAt: new Date(Date.now() - 1_000) });
        await reader.create(record);
        await crashed(writer('delete', step).delete(record.id));
        if (step < 2) {
          expect(await visible(reader, record)).toEqual({ byHash: [record], byId: record, listed: [record], all: [record], count: 1 });
        } else {
          expect(await reader.countByOwner(record.ownerId)).toBe(1);
          expect(await visible(reader, record)).toEqual({ byHash: [null], byId: null, listed: [], all: [], count: 0 });
          expect(await collect(reader.listByIssuer('issuer-3'))).toEqual([]);
          // Purge meets the id in the revoked index and drops what is left.
          expect(await reader.purge({ revokedBefore: new Date(), limit: 10 })).toBe(0);
        }
        await reader.delete(record.id);
        expect(await scanKeys(client, namespace)).toEqual([]);
      });
    }
  });

  describe('replaceHash', () => {
    for (const step of [1, 2, 3, 4]) {
      it(`after step ${step}: exactly one record, verifiable and never stale; a revoke then finishes the move`, async () => {
        await fresh();
        const record = makeApiKeyRecord();
        await reader.create(record);
        const toHash = makeApiKeyRecord().keyHash;
        await crashed(writer('replaceHash', step).replaceHash(record.id, record.keyHash, toHash));
        const moved = { ...record, keyHash: toHash };
        const seen = await visible(reader, record, [record.keyHash, toHash]);
        // Verifiable under the old hash until the copy is placed, under both until the old is dropped.
        expect(seen.byHash).toEqual([step < 4 ? record : null, step < 3 ? null : moved]);
        expect(seen.byId).toEqual(step < 3 ? record : moved);
        expect(seen.listed).toHaveLength(1);
        expect(seen.count).toBe(1);
        // A revoke meets the move, finishes it, and lands on the one copy left.
        const revokedAt = new Date();
        await reader.update(record.id, { revokedAt, updatedAt: revokedAt });
        expect(await reader.getByHash(record.keyHash)).toBeNull();
        expect((await reader.getByHash(toHash))?.revokedAt).toEqual(revokedAt);
        expect(await reader.replaceHash(record.id, record.keyHash, toHash)).toBe(false);
      });

      it(`after step ${step}: replaceHash called again finishes the move and answers true once`, async () => {
        await fresh();
        const record = makeApiKeyRecord();
        await reader.create(record);
        const toHash = makeApiKeyRecord().keyHash;
        await crashed(writer('replaceHash', step).replaceHash(record.id, record.keyHash, toHash));
        expect(await reader.replaceHash(record.id, record.keyHash, toHash)).toBe(true);
        expect(await reader.replaceHash(record.id, record.keyHash, toHash)).toBe(false);
        const moved = { ...record, keyHash: toHash };
        expect(await visible(reader, record, [record.keyHash, toHash])).toEqual({
          byHash: [null, moved],
          byId: moved,
          listed: [moved],
          all: [moved],
          count: 1,
        });
        await reader.delete(record.id);
        expect(await scanKeys(client, namespace)).toEqual([]);
      });
    }
  });
});
