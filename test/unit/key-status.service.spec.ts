import { describe, expect, it } from 'vitest';
import {
  ApiKeyRevokedError,
  ApiKeyService,
  CachedBackend,
  ListAllUnsupportedError,
  MemoryBackend,
  VersionConflictError,
  type ApiKeyBackend,
  type ApiKeyEvent,
} from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { requiredMethodsOf } from '../fixtures/required-methods.js';

function setup(backend: ApiKeyBackend = new MemoryBackend()) {
  const events: ApiKeyEvent[] = [];
  const service = new ApiKeyService(
    resolveApiAuthOptions({ backend, prefix: 'st_', trackUsage: false, onEvent: (event) => void events.push(event) }),
  );
  return { service, events, backend };
}

describe('ApiKeyService.disable / enable', () => {
  it('refuses a disabled key with disabled_api_key until it is enabled again; each switch is one version and one event', async () => {
    const { service, events } = setup();
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    events.length = 0;
    const disabled = await service.disable(apiKey.id);
    expect(disabled.disabledAt).toBeInstanceOf(Date);
    expect(disabled.version).toBe(2);
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'disabled_api_key' });
    expect(await service.verify(key)).toBeNull();
    // Idempotent: no write, no event.
    expect(await service.disable(apiKey.id)).toEqual(disabled);
    const enabled = await service.enable(apiKey.id);
    expect(enabled).toMatchObject({ disabledAt: null, version: 3 });
    expect((await service.authenticate(key)).ok).toBe(true);
    expect(await service.enable(apiKey.id)).toEqual(enabled);
    expect(events.map((e) => e.type)).toEqual(['api-key.disabled', 'api-key.enabled']);
    expect(events[0]).toMatchObject({ apiKey: { id: apiKey.id, version: 2 } });
    expect(JSON.stringify(events)).not.toContain(key);
  });

  it('checks revoked, then disabled, then expired', async () => {
    const { service, backend } = setup();
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n', expiresAt: new Date(Date.now() + 60_000) });
    await service.disable(apiKey.id);
    await backend.update(apiKey.id, { expiresAt: new Date(Date.now() - 1_000), updatedAt: new Date() });
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'disabled_api_key' });
    await service.revoke(apiKey.id);
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
  });

  it('a disabled key can still be revoked; a revoked key can be neither enabled nor disabled', async () => {
    const { service, events } = setup();
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    await service.disable(apiKey.id);
    const revoked = await service.revoke(apiKey.id);
    expect(revoked.revokedAt).toBeInstanceOf(Date);
    events.length = 0;
    await expect(service.enable(apiKey.id)).rejects.toBeInstanceOf(ApiKeyRevokedError);
    await expect(service.disable(apiKey.id)).rejects.toMatchObject({ code: 'key_revoked', id: apiKey.id });
    expect((await service.get(apiKey.id))?.version).toBe(revoked.version);
    expect(events).toEqual([]);
  });

  it('honours expectedVersion, and without it retries past a concurrent writer', async () => {
    const { service } = setup();
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    await expect(service.disable(apiKey.id, { expectedVersion: 2 })).rejects.toBeInstanceOf(VersionConflictError);
    await service.update(apiKey.id, { name: 'moved' });
    const results = await Promise.all([service.disable(apiKey.id), service.update(apiKey.id, { name: 'again' }), service.disable(apiKey.id)]);
    expect(results[0].disabledAt).not.toBeNull();
    const stored = await service.get(apiKey.id);
    expect(stored).toMatchObject({ name: 'again', version: 4 });
    expect(stored?.disabledAt).not.toBeNull();
  });

  it('validates its options and refuses an unknown id without echoing a key-shaped value', async () => {
    const { service } = setup();
    const { key } = await service.issue({ ownerId: 'o', name: 'n' });
    await expect(service.disable(key)).rejects.toThrow(/"\(redacted\)" was not found/);
    await expect(service.enable('x', { expectedVersion: 0 })).rejects.toMatchObject({ field: 'expectedVersion' });
    await expect(service.enable('x', { other: 1 } as never)).rejects.toMatchObject({ field: 'other' });
  });

  it('takes effect at once through an L1 cache', async () => {
    const { service } = setup(new CachedBackend(new MemoryBackend(), { ttl: 3_600_000 }));
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    expect((await service.authenticate(key)).ok).toBe(true);
    await service.disable(apiKey.id);
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'disabled_api_key' });
    await service.enable(apiKey.id);
    expect((await service.authenticate(key)).ok).toBe(true);
  });
});

describe('ApiKeyService.listAllPage', () => {
  it('pages every owner\'s keys newest first, with filters, and names what is wrong in its input', async () => {
    const { service } = setup();
    const issued = [];
    for (let i = 0; i < 5; i++) issued.push((await service.issue({ ownerId: `o${i % 2}`, name: `k${i}` })).apiKey);
    await service.disable(issued[1]!.id);
    await service.revoke(issued[3]!.id);
    // Keys minted in one millisecond tie on createdAt; the order is createdAt then id, both descending.
    const expected = [...issued].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1)).map((k) => k.id);
    const first = await service.listAllPage({ limit: 3 });
    expect(first.items.map((k) => k.id)).toEqual(expected.slice(0, 3));
    const second = await service.listAllPage({ limit: 3, cursor: first.nextCursor });
    expect(second.items.map((k) => k.id)).toEqual(expected.slice(3));
    expect(second.nextCursor).toBeNull();
    expect((await service.listAllPage({ status: 'disabled' })).items.map((k) => k.id)).toEqual([issued[1]!.id]);
    expect((await service.listAllPage({ status: 'revoked', ownerId: 'o1' })).items.map((k) => k.id)).toEqual([issued[3]!.id]);
    expect((await service.listAllPage({ ownerId: 'o0', status: 'active' })).items).toHaveLength(3);
    expect((await service.listAllPage({ environment: null })).items).toHaveLength(5);
    expect((await service.listAllPage({ environment: 'live' })).items).toHaveLength(0);
    await expect(service.listAllPage({ status: 'gone' as never })).rejects.toMatchObject({ field: 'status' });
    await expect(service.listAllPage({ cursor: 'nope' })).rejects.toMatchObject({ field: 'cursor' });
    await expect(service.listAllPage({ limit: 0 })).rejects.toMatchObject({ field: 'limit' });
  });

  it('throws ListAllUnsupportedError for a backend without listAll', async () => {
    const memory = new MemoryBackend();
    const custom = requiredMethodsOf(memory);
    const { service } = setup(custom);
    await expect(service.listAllPage()).rejects.toBeInstanceOf(ListAllUnsupportedError);
    await expect(service.listAllPage()).rejects.toMatchObject({ code: 'list_all_unsupported' });
    // The caches expose it only when the store behind them does.
    expect(new CachedBackend(custom).listAll).toBeUndefined();
    expect(typeof new CachedBackend(memory).listAll).toBe('function');
  });
});
