import { createHash, createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ApiKeyAlreadyRotatedError,
  ApiKeyNotFoundError,
  ApiKeyService,
  ApiKeyValidationError,
  BackendUnavailableError,
  DuplicateApiKeyError,
  type ApiKey,
  type ApiKeyEvent,
  type IssueApiKeyInput,
  type RotatedApiKey,
} from 'nestjs-api-auth';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { replacementIdFor } from '../../lib/internal/replacement-id.js';
import { InstrumentedBackend } from '../fixtures/instrumented.backend.js';
import { withLatency } from '../fixtures/race-suite.js';
import { makeService } from '../fixtures/service.js';
import { track } from '../fixtures/settled.js';

const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');
const HOUR = 3_600_000;

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Asserts `promise` rejects with an `ApiKeyValidationError` on `field`. */
async function rejectsOn(promise: Promise<unknown>, field: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected a validation error on ${field}`).toBeInstanceOf(ApiKeyValidationError);
  expect((error as ApiKeyValidationError).field).toBe(field);
  expect((error as Error).message).toContain(`"${field}"`);
}

let service: ApiKeyService;
let backend: InstrumentedBackend;

beforeEach(() => {
  ({ service, backend } = makeService());
});

afterEach(() => {
  vi.useRealTimers();
});

describe('issue', () => {
  it('returns the plaintext once and stores only its SHA-256, with a hint and every field', async () => {
    const before = Date.now();
    const { key, apiKey } = await service.issue({
      ownerId: 'user-1',
      name: 'CI key',
      scopes: ['read', 'write', 'read'],
      metadata: { plan: 'pro', nested: { a: [1, 2] } },
    });
    expect(service.format.parse(key).ok).toBe(true);
    expect(apiKey).not.toHaveProperty('keyHash');
    expect(apiKey).toMatchObject({
      ownerId: 'user-1',
      name: 'CI key',
      scopes: ['read', 'write'],
      metadata: { plan: 'pro', nested: { a: [1, 2] } },
      hint: `test_…${key.slice(-4)}`,
      expiresAt: null,
      revokedAt: null,
      lastUsedAt: null,
      rotatedFromId: null,
    });
    expect(apiKey.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(apiKey.createdAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(apiKey.updatedAt).toEqual(apiKey.createdAt);

    const stored = await backend.getById(apiKey.id);
    expect(stored?.keyHash).toBe(sha256(key));
    expect(JSON.stringify(stored)).not.toContain(key);
  });

  it('stores HMAC-SHA256 with the pepper when one is configured', async () => {
    const pepper = 'pepper-pepper-pepper-pepper';
    const peppered = makeService({ pepper });
    const { key, apiKey } = await peppered.service.issue({ ownerId: 'o', name: 'n' });
    const stored = await peppered.backend.getById(apiKey.id);
    expect(stored?.keyHash).toBe(createHmac('sha256', pepper).update(key).digest('hex'));
    expect(stored?.keyHash).not.toBe(sha256(key));
    expect(await peppered.service.verify(key)).toMatchObject({ id: apiKey.id });
    // The same key is unknown to a deployment with another pepper (or none).
    const other = makeService({ pepper: pepper + '!', backend: peppered.backend });
    expect(await other.service.verify(key)).toBeNull();
  });

  it('keeps the expiry, from a Date or an ISO string', async () => {
    const at = new Date(Date.now() + HOUR);
    expect((await service.issue({ ownerId: 'o', name: 'n', expiresAt: at })).apiKey.expiresAt).toEqual(at);
    expect((await service.issue({ ownerId: 'o', name: 'n', expiresAt: at.toISOString() })).apiKey.expiresAt).toEqual(at);
  });

  it('copies scopes and metadata: mutating the input afterwards changes nothing stored', async () => {
    const input = { ownerId: 'o', name: 'n', scopes: ['a'], metadata: { plan: 'free' } };
    const { apiKey } = await service.issue(input);
    input.scopes.push('admin');
    input.metadata.plan = 'enterprise';
    expect(await service.get(apiKey.id)).toMatchObject({ scopes: ['a'], metadata: { plan: 'free' } });
  });

  const valid: IssueApiKeyInput = { ownerId: 'user-1', name: 'key' };
  const bad: Array<[string, string, unknown]> = [
    ['ownerId', 'empty', ''],
    ['ownerId', 'blank', '   '],
    ['ownerId', 'missing', undefined],
    ['ownerId', 'a number', 42],
    ['ownerId', '256 characters', 'o'.repeat(256)],
    ['name', 'empty', ''],
    ['name', 'blank', '\t\n'],
    ['name', 'missing', undefined],
    ['name', 'an object', { toString: () => 'x' }],
    ['name', '201 characters', 'n'.repeat(201)],
    ['scopes', 'a string', 'read'],
    ['scopes', 'a non-string entry', ['read', 7]],
    ['scopes', 'a null entry', [null]],
    ['scopes', 'an empty scope', ['']],
    ['scopes', 'a scope with a space', ['read write']],
    ['scopes', 'a non-ASCII scope', ['lëse']],
    ['scopes', 'a 129-character scope', ['s'.repeat(129)]],
    ['scopes', '101 scopes', Array.from({ length: 101 }, (_, i) => `s${i}`)],
    ['expiresAt', 'in the past', new Date(Date.now() - 1_000)],
    ['expiresAt', 'an unparseable string', 'next tuesday'],
    ['expiresAt', 'an invalid Date', new Date(Number.NaN)],
    ['expiresAt', 'a number', Date.now() + HOUR],
    ['metadata', 'an array', [1, 2]],
    ['metadata', 'a string', 'plan=pro'],
    ['metadata', 'a number', 3],
    ['metadata', 'a Date', new Date()],
    ['metadata', 'an object that serialises to an array', { toJSON: () => [1] }],
    ['metadata', 'an object that serialises to nothing', { toJSON: () => undefined }],
    ['metadata', 'over 8 kB', { blob: 'x'.repeat(8_192) }],
    ['metadata', 'circular', (() => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    })()],
    ['metadata', 'holding a BigInt', { n: 1n }],
  ];

  it.each(bad)('rejects %s that is %s, before touching the backend', async (field, _label, value) => {
    await rejectsOn(service.issue({ ...valid, [field]: value } as IssueApiKeyInput), field);
    expect(backend.calls.create).toBe(0);
    expect(backend.size).toBe(0);
  });

  it('rejects an expiry of exactly now', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    await rejectsOn(service.issue({ ...valid, expiresAt: new Date('2030-01-01T00:00:00Z') }), 'expiresAt');
  });

  it('reads null metadata, scopes and expiry as "none", like omitting them', async () => {
    const { apiKey } = await service.issue({ ...valid, metadata: null, scopes: null, expiresAt: null } as never);
    expect(apiKey).toMatchObject({ metadata: {}, scopes: [], expiresAt: null });
  });

  it('rejects input that is not an object', async () => {
    await rejectsOn(service.issue(null as unknown as IssueApiKeyInput), 'input');
    await rejectsOn(service.issue('user-1' as unknown as IssueApiKeyInput), 'input');
  });

  it('accepts metadata right at the byte limit, counted in UTF-8 bytes', async () => {
    const small = makeService({ maxMetadataBytes: 20 });
    const fits = { a: 'é'.repeat(7) }; // JSON: {"a":"ééééééé"} = 8 + 14 = 22 bytes
    expect(Buffer.byteLength(JSON.stringify(fits))).toBe(22);
    await rejectsOn(small.service.issue({ ...valid, metadata: fits }), 'metadata');
    const exact = { a: 'é'.repeat(6) }; // 20 bytes
    expect(Buffer.byteLength(JSON.stringify(exact))).toBe(20);
    await expect(small.service.issue({ ...valid, metadata: exact })).resolves.toBeDefined();
  });

  it('honours maxScopes', async () => {
    const few = makeService({ maxScopes: 2 });
    await expect(few.service.issue({ ...valid, scopes: ['a', 'b'] })).resolves.toBeDefined();
    await rejectsOn(few.service.issue({ ...valid, scopes: ['a', 'b', 'c'] }), 'scopes');
  });
});

describe('verify and authenticate', () => {
  it('resolves the record (without hash) for a valid key', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n', scopes: ['x'] });
    const verified = await service.verify(key);
    expect(verified).toEqual(apiKey);
    expect(verified).not.toHaveProperty('keyHash');
    expect(await service.authenticate(key)).toEqual({ ok: true, apiKey });
  });

  it('rejects malformed input offline: no hash lookup at all', async () => {
    const { key } = await service.issue({ ownerId: 'o', name: 'n' });
    const lastChar = key.at(-1) === 'A' ? 'B' : 'A';
    for (const input of ['', ' ', 'garbage', key.slice(1), key.slice(0, -1) + lastChar, 'x'.repeat(10_240), ` ${key}`]) {
      expect(await service.verify(input)).toBeNull();
      expect(await service.authenticate(input)).toEqual({ ok: false, code: 'invalid_api_key' });
    }
    for (const input of [undefined, null, 42, {}]) expect(await service.verify(input as unknown as string)).toBeNull();
    expect(backend.calls.getByHash).toBe(0);
  });

  it('answers invalid_api_key for a well-formed key that was never issued', async () => {
    const key = service.format.generate();
    expect(await service.verify(key)).toBeNull();
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'invalid_api_key' });
    expect(backend.calls.getByHash).toBe(2);
  });

  it('refuses a record whose stored hash does not match (a misbehaving backend)', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    const stored = (await backend.getById(apiKey.id))!;
    const spy = vi.spyOn(backend, 'getByHash');
    const other = (c: string) => (c === '0' ? '1' : '0');
    // Another hash, one differing only in its last or first character, a prefix, a longer one.
    for (const keyHash of [
      sha256('something else'),
      stored.keyHash.slice(0, -1) + other(stored.keyHash.at(-1)!),
      other(stored.keyHash[0]!) + stored.keyHash.slice(1),
      stored.keyHash.slice(0, -1),
      stored.keyHash + '0',
      // A custom store's broken records: a non-ASCII character (same length, more
      // UTF-8 bytes), or no string at all. Refused, not a 500.
      '\u0161' + stored.keyHash.slice(1),
      undefined as unknown as string,
      Buffer.from(stored.keyHash) as unknown as string,
    ]) {
      spy.mockResolvedValueOnce({ ...stored, keyHash });
      expect(await service.authenticate(key)).toEqual({ ok: false, code: 'invalid_api_key' });
    }
    spy.mockRestore();
    expect(await service.authenticate(key)).toMatchObject({ ok: true });
  });

  it('expires a key at expiresAt', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = new Date('2030-01-01T00:00:00Z').getTime();
    vi.setSystemTime(t0);
    const { key } = await service.issue({ ownerId: 'o', name: 'n', expiresAt: new Date(t0 + 60_000) });
    vi.setSystemTime(t0 + 59_999);
    expect(await service.verify(key)).not.toBeNull();
    vi.setSystemTime(t0 + 60_000);
    expect(await service.verify(key)).toBeNull();
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'expired_api_key' });
  });

  it('expires a key with a short expiry: valid up to it, expired from it on', async () => {
    // On a fake Date: a 150 ms expiry a busy machine could pass before the first lookup.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      const expiresAt = new Date(Date.now() + 150);
      const { key } = await service.issue({ ownerId: 'o', name: 'n', expiresAt });
      expect(await service.verify(key)).not.toBeNull();
      vi.setSystemTime(expiresAt.getTime() - 1);
      expect(await service.verify(key)).not.toBeNull();
      vi.setSystemTime(expiresAt);
      expect(await service.authenticate(key)).toEqual({ ok: false, code: 'expired_api_key' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('throws BackendUnavailableError (never null) when the backend throws', async () => {
    const { key } = await service.issue({ ownerId: 'o', name: 'n' });
    backend.faults.getByHash = 'throw';
    await expect(service.verify(key)).rejects.toBeInstanceOf(BackendUnavailableError);
    const result = await service.authenticate(key);
    expect(result).toMatchObject({ ok: false, code: 'backend_unavailable' });
  });

  it("wraps a custom backend's own error in BackendUnavailableError with a redacted copy as cause", async () => {
    const { key } = await service.issue({ ownerId: 'o', name: 'n' });
    const keyHash = createHash('sha256').update(key).digest('hex');
    const spy = vi.spyOn(backend, 'getByHash').mockRejectedValueOnce(new TypeError(`lookup of ${keyHash} failed`, { cause: new Error(keyHash) }));
    const error = (await service.verify(key).catch((e: unknown) => e)) as Error & { cause?: Error };
    spy.mockRestore();
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect(error.cause).toMatchObject({ name: 'TypeError', message: 'lookup of [redacted] failed' });
    expect(error.cause!.cause).toBeUndefined();
  });

  it('gives up after verifyTimeoutMs when the backend hangs, not before', async () => {
    vi.useFakeTimers();
    try {
      const slow = makeService({ verifyTimeoutMs: 100 });
      const { key } = await slow.service.issue({ ownerId: 'o', name: 'n' });
      slow.backend.faults.getByHash = 'hang';
      const verdict = track(slow.service.verify(key));
      await vi.advanceTimersByTimeAsync(99);
      expect(verdict.settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(verdict.error).toBeInstanceOf(BackendUnavailableError);
      expect((verdict.error as Error).message).toContain('100 ms');
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('get, listByOwner, listPage', () => {
  it('gets a record by id without its hash, or null', async () => {
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    expect(await service.get(apiKey.id)).toEqual(apiKey);
    expect(await service.get('00000000-0000-4000-8000-000000000000')).toBeNull();
  });

  it('streams an owner\'s keys, oldest first, without hashes', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await service.issue({ ownerId: 'alice', name: `k${i}` })).apiKey.id);
    await service.issue({ ownerId: 'bob', name: 'other' });
    const listed = await collect(service.listByOwner('alice'));
    expect(listed.map((k) => k.id).sort()).toEqual([...ids].sort());
    for (let i = 1; i < listed.length; i++) {
      expect(listed[i]!.createdAt.getTime()).toBeGreaterThanOrEqual(listed[i - 1]!.createdAt.getTime());
    }
    for (const k of listed) expect(k).not.toHaveProperty('keyHash');
    expect(await collect(service.listByOwner('nobody'))).toEqual([]);
  });

  it('pages with opaque cursors until nextCursor is null, every key exactly once, with the total', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 12; i++) ids.add((await service.issue({ ownerId: 'alice', name: `k${i}` })).apiKey.id);
    await service.issue({ ownerId: 'bob', name: 'other' });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await service.listPage('alice', { cursor, limit: 5 });
      expect(page.total).toBe(12);
      expect(page.items.length).toBe(pages < 2 ? 5 : 2);
      seen.push(...page.items.map((k) => k.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(12);
    expect(new Set(seen)).toEqual(ids);
  });

  it('gives no cursor when a page holds exactly the rest, and an empty page for an unknown owner', async () => {
    for (let i = 0; i < 4; i++) await service.issue({ ownerId: 'alice', name: `k${i}` });
    const page = await service.listPage('alice', { limit: 4 });
    expect(page.items).toHaveLength(4);
    expect(page.nextCursor).toBeNull();
    expect(await service.listPage('nobody')).toEqual({ items: [], nextCursor: null, total: 0 });
  });

  it('counts without countByOwner by streaming', async () => {
    for (let i = 0; i < 3; i++) await service.issue({ ownerId: 'alice', name: `k${i}` });
    (backend as { countByOwner?: unknown }).countByOwner = undefined;
    expect(await service.countByOwner('alice')).toBe(3);
    expect((await service.listPage('alice', { limit: 2 })).total).toBe(3);
  });

  it.each([[0], [1001], [1.5], [-1], [Number.NaN]])('rejects limit %s', async (limit) => {
    await rejectsOn(service.listPage('alice', { limit }), 'limit');
  });

  it.each([['not a cursor'], ['x'.repeat(300)], [Buffer.from('12:bad id!').toString('base64url')]])(
    'rejects a forged cursor %#',
    async (cursor) => {
      await rejectsOn(service.listPage('alice', { cursor }), 'cursor');
    },
  );
});

describe('update', () => {
  it('changes name, scopes, metadata and expiry, bumps updatedAt and keeps the key working', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = new Date('2030-01-01T00:00:00Z').getTime();
    vi.setSystemTime(t0);
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n', scopes: ['a'] });
    vi.setSystemTime(t0 + 1_000);
    const expiresAt = new Date(t0 + HOUR);
    const updated = await service.update(apiKey.id, {
      name: 'renamed',
      scopes: ['b', 'c'],
      metadata: { tier: 2 },
      expiresAt,
    });
    expect(updated).toMatchObject({ name: 'renamed', scopes: ['b', 'c'], metadata: { tier: 2 }, expiresAt });
    expect(updated.updatedAt.getTime()).toBe(t0 + 1_000);
    expect(updated.createdAt.getTime()).toBe(t0);
    expect(updated).not.toHaveProperty('keyHash');
    expect(await service.verify(key)).toMatchObject({ name: 'renamed', scopes: ['b', 'c'] });
  });

  it('leaves fields that are not given untouched, and removes the expiry with null', async () => {
    const { apiKey } = await service.issue({
      ownerId: 'o',
      name: 'n',
      scopes: ['a'],
      metadata: { m: 1 },
      expiresAt: new Date(Date.now() + HOUR),
    });
    const updated = await service.update(apiKey.id, { name: 'only the name' });
    expect(updated).toMatchObject({ scopes: ['a'], metadata: { m: 1 }, expiresAt: apiKey.expiresAt });
    expect((await service.update(apiKey.id, { expiresAt: null })).expiresAt).toBeNull();
  });

  it('validates every field like issue does, and writes nothing on error', async () => {
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    await rejectsOn(service.update(apiKey.id, { name: ' ' }), 'name');
    await rejectsOn(service.update(apiKey.id, { scopes: [1 as unknown as string] }), 'scopes');
    await rejectsOn(service.update(apiKey.id, { metadata: [] as unknown as Record<string, unknown> }), 'metadata');
    await rejectsOn(service.update(apiKey.id, { metadata: { big: 'x'.repeat(9_000) } }), 'metadata');
    await rejectsOn(service.update(apiKey.id, { expiresAt: new Date(Date.now() - 1) }), 'expiresAt');
    await rejectsOn(service.update(apiKey.id, null as unknown as object), 'changes');
    expect(backend.calls.update).toBe(0);
    expect(await service.get(apiKey.id)).toEqual(apiKey);
  });

  it('throws ApiKeyNotFoundError for an unknown id', async () => {
    await expect(service.update('00000000-0000-4000-8000-000000000000', { name: 'x' })).rejects.toBeInstanceOf(
      ApiKeyNotFoundError,
    );
  });
});

describe('revoke and delete', () => {
  it('revokes for good: verify fails with revoked_api_key; revoking again keeps the first revokedAt', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    const revoked = await service.revoke(apiKey.id);
    expect(revoked.revokedAt).toBeInstanceOf(Date);
    expect(await service.verify(key)).toBeNull();
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
    await new Promise((r) => setTimeout(r, 5));
    expect((await service.revoke(apiKey.id)).revokedAt).toEqual(revoked.revokedAt);
    // An update cannot bring it back.
    await service.update(apiKey.id, { name: 'renamed', expiresAt: null });
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
  });

  it('reports revoked rather than expired for a key that is both', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = new Date('2030-01-01T00:00:00Z').getTime();
    vi.setSystemTime(t0);
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n', expiresAt: new Date(t0 + 1_000) });
    await service.revoke(apiKey.id);
    vi.setSystemTime(t0 + 2_000);
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
  });

  it('throws ApiKeyNotFoundError when revoking an unknown id', async () => {
    await expect(service.revoke('00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(ApiKeyNotFoundError);
    await expect(service.revoke('')).rejects.toBeInstanceOf(ApiKeyNotFoundError);
    await expect(service.revoke(42 as unknown as string)).rejects.toBeInstanceOf(ApiKeyNotFoundError);
  });

  it('deletes the record; the key stops working; deleting again or an unknown id resolves', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    await service.delete(apiKey.id);
    expect(await service.get(apiKey.id)).toBeNull();
    expect(await service.verify(key)).toBeNull();
    await expect(service.delete(apiKey.id)).resolves.toBeUndefined();
    await expect(service.delete('00000000-0000-4000-8000-000000000000')).resolves.toBeUndefined();
    expect(await collect(service.listByOwner('o'))).toEqual([]);
  });
});

describe('rotate', () => {
  const t0 = new Date('2030-01-01T00:00:00Z').getTime();

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(t0);
  });

  it('issues a linked replacement; the old key works inside the grace period and fails after', async () => {
    const old = await service.issue({ ownerId: 'o', name: 'n', scopes: ['a', 'b'], metadata: { plan: 'pro' } });
    vi.setSystemTime(t0 + 1_000);
    const rotated = await service.rotate(old.apiKey.id, { gracePeriodMs: 60_000 });

    expect(rotated.key).not.toBe(old.key);
    expect(service.format.parse(rotated.key).ok).toBe(true);
    expect(rotated.apiKey).toMatchObject({
      ownerId: 'o',
      name: 'n',
      scopes: ['a', 'b'],
      metadata: { plan: 'pro' },
      rotatedFromId: old.apiKey.id,
      expiresAt: null,
      revokedAt: null,
    });
    expect(rotated.apiKey.id).not.toBe(old.apiKey.id);
    expect(rotated.previous.id).toBe(old.apiKey.id);
    expect(rotated.previous.expiresAt).toEqual(new Date(t0 + 61_000));
    expect(rotated.apiKey).not.toHaveProperty('keyHash');
    expect(rotated.previous).not.toHaveProperty('keyHash');
    expect((await service.get(old.apiKey.id))?.expiresAt).toEqual(new Date(t0 + 61_000));

    vi.setSystemTime(t0 + 60_999);
    expect(await service.verify(old.key)).toMatchObject({ id: old.apiKey.id });
    expect(await service.verify(rotated.key)).toMatchObject({ id: rotated.apiKey.id });

    vi.setSystemTime(t0 + 61_000);
    expect(await service.authenticate(old.key)).toEqual({ ok: false, code: 'expired_api_key' });
    expect(await service.verify(rotated.key)).toMatchObject({ id: rotated.apiKey.id });
  });

  it('ends the old key at once with no grace period', async () => {
    const old = await service.issue({ ownerId: 'o', name: 'n' });
    const rotated = await service.rotate(old.apiKey.id);
    expect(await service.authenticate(old.key)).toEqual({ ok: false, code: 'expired_api_key' });
    expect(await service.verify(rotated.key)).not.toBeNull();
  });

  it('starts the grace period once the replacement is stored, however slow the store is', async () => {
    class SlowCreate extends InstrumentedBackend {
      override async create(...args: Parameters<InstrumentedBackend['create']>) {
        vi.setSystemTime(Date.now() + 5_000); // the write takes 5 s
        return super.create(...args);
      }
    }
    const slow = makeService({ backend: new SlowCreate() }).service;
    const old = await slow.issue({ ownerId: 'o', name: 'n' });
    const rotated = await slow.rotate(old.apiKey.id, { gracePeriodMs: 1_000 });
    // Counted from before the write, the old key would have expired 4 s before rotate returned.
    expect(rotated.previous.expiresAt!.getTime()).toBe(Date.now() + 1_000);
    expect(await slow.verify(old.key)).not.toBeNull();
    vi.setSystemTime(Date.now() + 1_000);
    expect(await slow.authenticate(old.key)).toEqual({ ok: false, code: 'expired_api_key' });
  });

  it('never extends the old key\'s own expiry, and the replacement keeps that expiry', async () => {
    const expiresAt = new Date(t0 + 10_000);
    const old = await service.issue({ ownerId: 'o', name: 'n', expiresAt });
    const rotated = await service.rotate(old.apiKey.id, { gracePeriodMs: HOUR, name: 'new name' });
    expect(rotated.previous.expiresAt).toEqual(expiresAt);
    expect(rotated.apiKey.expiresAt).toEqual(expiresAt);
    expect(rotated.apiKey.name).toBe('new name');
  });

  it('refuses to rotate a revoked or expired key, and an unknown id', async () => {
    const revoked = await service.issue({ ownerId: 'o', name: 'n' });
    await service.revoke(revoked.apiKey.id);
    await rejectsOn(service.rotate(revoked.apiKey.id, { gracePeriodMs: 1_000 }), 'id');

    const expiring = await service.issue({ ownerId: 'o', name: 'n', expiresAt: new Date(t0 + 1_000) });
    vi.setSystemTime(t0 + 1_000);
    await rejectsOn(service.rotate(expiring.apiKey.id), 'id');

    await expect(service.rotate('00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(ApiKeyNotFoundError);
    // Nothing was minted by the refused rotations.
    expect(await service.countByOwner('o')).toBe(2);
  });

  it.each([[-1], [1.5], [Number.NaN], ['1000']])('rejects gracePeriodMs %j', async (gracePeriodMs) => {
    const old = await service.issue({ ownerId: 'o', name: 'n' });
    await rejectsOn(service.rotate(old.apiKey.id, { gracePeriodMs: gracePeriodMs as number }), 'gracePeriodMs');
    expect(await service.verify(old.key)).not.toBeNull();
  });

  it('validates the new name', async () => {
    const old = await service.issue({ ownerId: 'o', name: 'n' });
    await rejectsOn(service.rotate(old.apiKey.id, { name: '' }), 'name');
  });
});

describe('rotate happens once per key', () => {
  const t0 = new Date('2030-01-01T00:00:00Z').getTime();
  const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(t0);
  });

  /** The rejection of `promise`, asserted to be an `ApiKeyAlreadyRotatedError` naming `id` and `replacementId`. */
  async function alreadyRotated(promise: Promise<unknown>, id: string, replacementId: string): Promise<ApiKeyAlreadyRotatedError> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, 'expected ApiKeyAlreadyRotatedError').toBeInstanceOf(ApiKeyAlreadyRotatedError);
    expect(error).toMatchObject({ id, replacementId });
    return error as ApiKeyAlreadyRotatedError;
  }

  it('derives the replacement id from the old one: a version 4 UUID that every instance and version computes alike', async () => {
    // A fixed vector: instances of different versions must agree, or a fleet mid-upgrade rotates a key twice.
    expect(replacementIdFor('00000000-0000-4000-8000-000000000001')).toBe('d7ec74b2-80f8-43d2-a603-bc1794d4584c');
    const old = await service.issue({ ownerId: 'o', name: 'n' });
    const rotated = await service.rotate(old.apiKey.id, { gracePeriodMs: 1_000 });
    expect(rotated.apiKey.id).toBe(replacementIdFor(old.apiKey.id));
    expect(rotated.apiKey.id).toMatch(V4);
    expect(rotated.apiKey.rotatedFromId).toBe(old.apiKey.id);
    // A rotation chain: each link has its own id.
    const again = await service.rotate(rotated.apiKey.id);
    expect(again.apiKey.id).toBe(replacementIdFor(rotated.apiKey.id));
    expect(new Set([old.apiKey.id, rotated.apiKey.id, again.apiKey.id]).size).toBe(3);
  });

  it('refuses a second rotation: typed error, nothing minted, the old key as the first rotation left it', async () => {
    const events: ApiKeyEvent[] = [];
    ({ service, backend } = makeService({ onEvent: (e) => events.push(e) }));
    const old = await service.issue({ ownerId: 'o', name: 'n' });
    const first = await service.rotate(old.apiKey.id, { gracePeriodMs: 60_000 });
    const updates = backend.calls.update;
    vi.setSystemTime(t0 + 1_000);

    const error = await alreadyRotated(service.rotate(old.apiKey.id, { gracePeriodMs: 1_000 }), old.apiKey.id, first.apiKey.id);
    expect(error.message).toContain(old.apiKey.id);
    expect(error.message).not.toContain(old.key);
    expect(error.message).not.toContain(first.key);
    expect(backend.calls.update).toBe(updates);
    expect(await service.countByOwner('o')).toBe(2);
    // Still the first rotation's grace end, not the second's shorter one.
    expect((await service.get(old.apiKey.id))?.expiresAt).toEqual(new Date(t0 + 60_000));
    expect(await service.verify(old.key)).toMatchObject({ id: old.apiKey.id });
    expect(await service.verify(first.key)).toMatchObject({ id: first.apiKey.id });
    expect(events.filter((e) => e.type === 'api-key.rotated')).toHaveLength(1);
  });

  it('says "already rotated", not "expired" or "revoked", once the rotation itself or later events ended the old key', async () => {
    const abrupt = await service.issue({ ownerId: 'o', name: 'n' });
    const replaced = await service.rotate(abrupt.apiKey.id, { gracePeriodMs: 0 });
    await alreadyRotated(service.rotate(abrupt.apiKey.id), abrupt.apiKey.id, replaced.apiKey.id);

    const graceful = await service.issue({ ownerId: 'o', name: 'n' });
    const successor = await service.rotate(graceful.apiKey.id, { gracePeriodMs: 1_000 });
    vi.setSystemTime(t0 + 1_000);
    await alreadyRotated(service.rotate(graceful.apiKey.id), graceful.apiKey.id, successor.apiKey.id);
    await service.revoke(graceful.apiKey.id);
    await alreadyRotated(service.rotate(graceful.apiKey.id), graceful.apiKey.id, successor.apiKey.id);
    expect(await service.countByOwner('o')).toBe(4);
  });

  it('counts a revoked replacement; a deleted one is gone, so the old key may rotate again, never extending its grace', async () => {
    const old = await service.issue({ ownerId: 'o', name: 'n' });
    const first = await service.rotate(old.apiKey.id, { gracePeriodMs: 60_000 });
    await service.revoke(first.apiKey.id);
    await alreadyRotated(service.rotate(old.apiKey.id), old.apiKey.id, first.apiKey.id);

    await service.delete(first.apiKey.id);
    vi.setSystemTime(t0 + 1_000);
    const second = await service.rotate(old.apiKey.id, { gracePeriodMs: 3_600_000 });
    expect(second.apiKey.id).toBe(first.apiKey.id);
    expect(second.key).not.toBe(first.key);
    expect(second.previous.expiresAt).toEqual(new Date(t0 + 60_000));
    expect(await service.verify(first.key)).toBeNull();
    expect(await service.verify(second.key)).toMatchObject({ id: second.apiKey.id, revokedAt: null });
    await alreadyRotated(service.rotate(old.apiKey.id), old.apiKey.id, second.apiKey.id);
  });

  it('rotates imported and legacy keys once too', async () => {
    ({ service, backend } = makeService({ legacyKeyPrefixes: ['ak_'] }));
    const imported = await service.import({ key: `ak_${'x'.repeat(30)}` }, { ownerId: 'o', name: 'legacy' });
    const rotated = await service.rotate(imported.id, { gracePeriodMs: 1_000 });
    expect(rotated.key.startsWith('test_')).toBe(true);
    await alreadyRotated(service.rotate(imported.id), imported.id, rotated.apiKey.id);
  });

  it('retries a key-hash collision under the same id', async () => {
    class CollidesOnce extends InstrumentedBackend {
      collided = false;
      override async create(apiKey: ApiKey): Promise<ApiKey> {
        if (apiKey.rotatedFromId !== null && !this.collided) {
          this.collided = true;
          throw new DuplicateApiKeyError('keyHash');
        }
        return super.create(apiKey);
      }
    }
    const colliding = new CollidesOnce();
    ({ service } = makeService({ backend: colliding }));
    const old = await service.issue({ ownerId: 'o', name: 'n' });
    const rotated = await service.rotate(old.apiKey.id);
    expect(colliding.collided).toBe(true);
    expect(rotated.apiKey.id).toBe(replacementIdFor(old.apiKey.id));
    expect(await service.verify(rotated.key)).toMatchObject({ id: rotated.apiKey.id });
  });

  it('removes the replacement when the old key cannot be updated, so that a retry can rotate it', async () => {
    const old = await service.issue({ ownerId: 'o', name: 'n' });
    backend.faults.update = 'throw';
    await expect(service.rotate(old.apiKey.id, { gracePeriodMs: 1_000 })).rejects.toThrow('simulated outage in update');
    expect(await service.get(replacementIdFor(old.apiKey.id))).toBeNull();
    expect(await service.countByOwner('o')).toBe(1);
    expect((await service.get(old.apiKey.id))?.expiresAt).toBeNull();

    delete backend.faults.update;
    const rotated = await service.rotate(old.apiKey.id, { gracePeriodMs: 1_000 });
    expect(rotated.previous.expiresAt).toEqual(new Date(t0 + 1_000));
  });

  it('of 20 concurrent rotations of one key, one wins; the others mint nothing, write nothing and emit nothing', async () => {
    for (const gracePeriodMs of [0, 60_000]) {
      const store = new InstrumentedBackend();
      const events: ApiKeyEvent[] = [];
      // Two instances over one store that answers a turn or two later, so the racers interleave.
      const instances = [0, 1].map(
        () => new ApiKeyService(resolveApiAuthOptions({ prefix: 'test_', backend: withLatency(store), onEvent: (e) => events.push(e) })),
      );
      const old = await instances[0]!.issue({ ownerId: 'o', name: 'n' });
      const updates = store.calls.update;
      // Later racers ask for shorter grace periods: a loser that wrote would show in the old key's expiry.
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          instances[i % 2]!.rotate(old.apiKey.id, { gracePeriodMs: gracePeriodMs && gracePeriodMs + (20 - i) * 1_000 }),
        ),
      );
      const won = results.filter((r): r is PromiseFulfilledResult<RotatedApiKey> => r.status === 'fulfilled');
      expect(won, `grace ${gracePeriodMs}`).toHaveLength(1);
      const winner = won[0]!.value;
      for (const r of results) {
        if (r.status === 'fulfilled') continue;
        expect(r.reason).toBeInstanceOf(ApiKeyAlreadyRotatedError);
        expect(r.reason).toMatchObject({ id: old.apiKey.id, replacementId: winner.apiKey.id });
      }
      expect(store.calls.update - updates).toBe(1);
      expect(events.filter((e) => e.type === 'api-key.rotated')).toHaveLength(1);
      expect(await instances[1]!.countByOwner('o')).toBe(2);
      expect(await store.getById(old.apiKey.id)).toMatchObject({ expiresAt: winner.previous.expiresAt, updatedAt: winner.previous.updatedAt });
    }
  });
});

describe('errors never echo a key', () => {
  it('does not put a plaintext key passed by mistake as an id into an error message', async () => {
    const { key } = await service.issue({ ownerId: 'o', name: 'n' });
    const longPrefix = makeService({ prefix: 'a_very_long_prefix_for_testing_' });
    const longKey = (await longPrefix.service.issue({ ownerId: 'o', name: 'n' })).key;
    const attempts = [
      service.revoke(key),
      service.update(key, { name: 'x' }),
      service.rotate(key),
      longPrefix.service.revoke(longKey),
    ];
    for (const attempt of attempts) {
      const error = (await attempt.catch((e: unknown) => e)) as ApiKeyNotFoundError;
      expect(error).toBeInstanceOf(ApiKeyNotFoundError);
      for (const secret of [key, longKey, key.slice(5, 40), longKey.slice(31, 70)]) {
        expect(error.message).not.toContain(secret);
        expect(String(error.id)).not.toContain(secret);
        expect(error.stack ?? '').not.toContain(secret);
      }
    }
  });
});
