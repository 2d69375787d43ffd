import { describe, expect, it } from 'vitest';
import {
  ApiKeyService,
  ApiKeyValidationError,
  MemoryBackend,
  VersionConflictError,
  type ApiKeyBackend,
  type ApiKeyEvent,
} from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { withLatency } from '../fixtures/race-suite.js';
import { requiredMethodsOf } from '../fixtures/required-methods.js';

function serviceOver(backend: ApiKeyBackend, events: ApiKeyEvent[] = []): ApiKeyService {
  return new ApiKeyService(resolveApiAuthOptions({ backend, prefix: 'pu_', onEvent: (e) => events.push(e) }));
}


const rejectsField = async (promise: Promise<unknown>, field: string) => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApiKeyValidationError);
  expect((error as ApiKeyValidationError).field).toBe(field);
};

describe('ApiKeyService refuses what it does not understand (issue 17, item 6)', () => {
  it('issue and import refuse unknown fields, naming them, and store and emit nothing', async () => {
    const backend = new MemoryBackend();
    const events: ApiKeyEvent[] = [];
    const service = serviceOver(backend, events);
    for (const field of ['expiresIn', 'expires_at', 'scope', 'policies', 'rateLimitMax']) {
      await rejectsField(service.issue({ ownerId: 'o', name: 'n', [field]: 1 } as never), field);
      await rejectsField(service.import({ keyHash: 'a'.repeat(64) }, { ownerId: 'o', name: 'n', [field]: 1 } as never), field);
    }
    await rejectsField(service.import({ keyHash: 'a'.repeat(64), salt: 'x' } as never, { ownerId: 'o', name: 'n' }), 'salt');
    expect(backend.size).toBe(0);
    expect(events).toEqual([]);
  });

  it('update refuses unknown fields and an empty change, names the field, writes and emits nothing', async () => {
    const backend = new MemoryBackend();
    const events: ApiKeyEvent[] = [];
    const service = serviceOver(backend, events);
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    events.length = 0;
    await rejectsField(service.update(apiKey.id, { enabled: false } as never), 'enabled');
    await rejectsField(service.update(apiKey.id, {}), 'changes');
    await rejectsField(service.update(apiKey.id, { name: undefined }), 'changes');
    await rejectsField(service.update(apiKey.id, { name: 'x' }, { expectedVersion: 0 }), 'expectedVersion');
    await rejectsField(service.update(apiKey.id, { name: 'x' }, { ifMatch: 1 } as never), 'ifMatch');
    await rejectsField(service.revoke(apiKey.id, { cascde: true } as never), 'cascde');
    expect(await service.get(apiKey.id)).toMatchObject({ name: 'n', version: 1, revokedAt: null });
    expect(events).toEqual([]);
  });

  it('update validates and writes only the given fields, and names them in the event', async () => {
    const events: ApiKeyEvent[] = [];
    const service = serviceOver(new MemoryBackend(), events);
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'n', scopes: ['a'], metadata: { keep: true } });
    events.length = 0;
    const updated = await service.update(apiKey.id, { scopes: ['b', 'b'] });
    expect(updated).toMatchObject({ name: 'n', scopes: ['b'], metadata: { keep: true }, version: 2 });
    expect(events).toMatchObject([{ type: 'api-key.updated', changed: ['scopes'] }]);
    await expect(service.update(apiKey.id, { name: 'x' }, { expectedVersion: 1 })).rejects.toBeInstanceOf(VersionConflictError);
    expect(events).toHaveLength(1);
  });

  it('an unknown or plaintext-shaped id is a not-found whose message holds no part of it', async () => {
    const service = serviceOver(new MemoryBackend());
    const plaintext = `pu_${'x'.repeat(40)}`;
    const error = await service.update(plaintext, { name: 'x' }).catch((e: unknown) => e);
    expect((error as Error).name).toBe('ApiKeyNotFoundError');
    expect((error as Error).message).not.toContain(plaintext);
  });
});

describe('ApiKeyService writes are partial and atomic', () => {
  it('rotate writes only the old key\'s expiry: an update racing it keeps its scopes and policy, 200 trials', async () => {
    const service = serviceOver(withLatency(new MemoryBackend()));
    const lost: number[] = [];
    for (let trial = 0; trial < 200; trial++) {
      const { apiKey } = await service.issue({ ownerId: `o${trial}`, name: 'old', scopes: ['a', 'b'] });
      const [, rotated] = await Promise.all([
        service.update(apiKey.id, { scopes: ['a'], policy: { quota: { limit: 5 } } }),
        service.rotate(apiKey.id, { gracePeriodMs: 60_000 }),
      ]);
      const old = (await service.get(apiKey.id))!;
      if (old.scopes.join() !== 'a' || old.policy?.quota?.limit !== 5 || old.expiresAt === null) lost.push(trial);
      expect(rotated.previous.expiresAt).not.toBeNull();
    }
    expect(lost).toEqual([]);
  });

  it('rotate keeps an expiry another writer shortened meanwhile (the grace period never extends it)', async () => {
    const service = serviceOver(withLatency(new MemoryBackend()));
    for (let trial = 0; trial < 50; trial++) {
      const { apiKey } = await service.issue({ ownerId: 'o', name: 'old' });
      const soon = new Date(Date.now() + 30_000);
      await Promise.all([service.update(apiKey.id, { expiresAt: soon }), service.rotate(apiKey.id, { gracePeriodMs: 3_600_000 })]);
      expect((await service.get(apiKey.id))?.expiresAt?.getTime()).toBe(soon.getTime());
    }
  });

  it('of racing revokes exactly one writes and emits; the first revokedAt stays', async () => {
    const events: ApiKeyEvent[] = [];
    const service = serviceOver(withLatency(new MemoryBackend()), events);
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'k' });
    events.length = 0;
    const results = await Promise.all(Array.from({ length: 10 }, () => service.revoke(apiKey.id)));
    expect(new Set(results.map((r) => r.revokedAt?.getTime())).size).toBe(1);
    expect(events.filter((e) => e.type === 'api-key.revoked')).toHaveLength(1);
    expect((await service.get(apiKey.id))?.version).toBe(2);
  });

  it('cascades through the owner\'s keys on a backend without listByIssuer', async () => {
    const events: ApiKeyEvent[] = [];
    const service = serviceOver(requiredMethodsOf(new MemoryBackend()), events);
    const root = await service.issue({ ownerId: 'o', name: 'root' });
    const child = await service.issue({ ownerId: 'o', name: 'child', issuedById: root.apiKey.id });
    const grandchild = await service.issue({ ownerId: 'o', name: 'grandchild', issuedById: child.apiKey.id });
    const other = await service.issue({ ownerId: 'o', name: 'other' });
    events.length = 0;
    await service.revoke(root.apiKey.id, { cascade: true });
    for (const { apiKey } of [root, child, grandchild]) expect((await service.get(apiKey.id))?.revokedAt).not.toBeNull();
    expect((await service.get(other.apiKey.id))?.revokedAt).toBeNull();
    expect(events.map((e) => (e.type === 'api-key.revoked' ? e.cascadeOf : e.type))).toEqual([undefined, root.apiKey.id, root.apiKey.id]);
  });

  it('revoke without cascade leaves issued keys alone; issuedById is validated', async () => {
    const service = serviceOver(new MemoryBackend());
    const root = await service.issue({ ownerId: 'o', name: 'root' });
    const child = await service.issue({ ownerId: 'o', name: 'child', issuedById: root.apiKey.id });
    expect(child.apiKey.issuedById).toBe(root.apiKey.id);
    await service.revoke(root.apiKey.id);
    expect((await service.get(child.apiKey.id))?.revokedAt).toBeNull();
    await rejectsField(service.issue({ ownerId: 'o', name: 'n', issuedById: 42 as never }), 'issuedById');
  });
});
