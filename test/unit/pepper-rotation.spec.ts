import { ConsoleLogger, Logger } from '@nestjs/common';
import { ApiKeyService, CachedBackend, KeyHasher, MemoryBackend, type ApiKeyEvent } from 'nestjs-api-auth';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { InstrumentedBackend } from '../fixtures/instrumented.backend.js';
import { CapturingLogger } from '../fixtures/log-capture.js';
import { requiredMethodsOf } from '../fixtures/required-methods.js';

const OLD = 'old-pepper-0123456789';
const OLDER = 'older-pepper-0123456789';
const NEW = 'new-pepper-0123456789';

function service(backend: MemoryBackend | CachedBackend | ReturnType<typeof requiredMethodsOf>, options: object = {}) {
  const events: ApiKeyEvent[] = [];
  const instance = new ApiKeyService(resolveApiAuthOptions({ prefix: 'test_', backend, onEvent: (e) => void events.push(e), ...options }));
  return { service: instance, events };
}

describe('pepper rotation (previousPeppers)', () => {
  let logs: CapturingLogger;
  beforeEach(() => {
    logs = new CapturingLogger();
    Logger.overrideLogger(logs);
  });
  afterEach(() => {
    Logger.overrideLogger(new ConsoleLogger());
  });

  it('authenticates a key hashed under a previous pepper and upgrades its hash on first use, once', async () => {
    const backend = new InstrumentedBackend();
    const { key, apiKey } = await service(backend, { pepper: OLD }).service.issue({ ownerId: 'o', name: 'k' });
    const { service: rotated, events } = service(backend, { pepper: NEW, previousPeppers: [OLDER, OLD] });

    const before = backend.calls.getByHash;
    expect((await rotated.verify(key))?.id).toBe(apiKey.id);
    // The current hash, the older pepper's, then the old one's, which finds it.
    expect(backend.calls.getByHash - before).toBe(3);
    expect(events.filter((e) => e.type === 'api-key.rehashed')).toEqual([{ type: 'api-key.rehashed', id: apiKey.id, at: expect.any(Date) }]);
    expect(await backend.getByHash(new KeyHasher(OLD).hash(key))).toBeNull();
    expect((await backend.getByHash(new KeyHasher(NEW).hash(key)))?.id).toBe(apiKey.id);
    // Not a management write: the ETag stays.
    expect((await backend.getById(apiKey.id))?.version).toBe(1);

    const upgraded = backend.calls.getByHash;
    expect((await rotated.verify(key))?.id).toBe(apiKey.id);
    expect(backend.calls.getByHash - upgraded).toBe(1);
    expect(events.filter((e) => e.type === 'api-key.rehashed')).toHaveLength(1);
    expect(logs.lines).toEqual([]);
  });

  it('costs an unknown key no store knows offline a lookup per previous pepper, and the current hash once more', async () => {
    const backend = new InstrumentedBackend();
    const { service: rotated } = service(backend, { pepper: NEW, previousPeppers: [OLD, OLDER] });
    const before = backend.calls.getByHash;
    expect(await rotated.verify(rotated.format.generate())).toBeNull();
    expect(backend.calls.getByHash - before).toBe(4);
    // Malformed keys still cost nothing.
    expect(await rotated.verify('test_not-a-key')).toBeNull();
    expect(backend.calls.getByHash - before).toBe(4);
  });

  it('finds a key another instance upgrades between the lookup under the current pepper and the old one', async () => {
    const backend = new MemoryBackend();
    const { key, apiKey } = await service(backend, { pepper: OLD }).service.issue({ ownerId: 'o', name: 'k' });
    const oldHash = new KeyHasher(OLD).hash(key);
    const newHash = new KeyHasher(NEW).hash(key);
    // The other instance's upgrade lands just before this instance asks for the old hash.
    const getByHash = backend.getByHash.bind(backend);
    backend.getByHash = async (hash) => {
      if (hash === oldHash) await backend.replaceHash(apiKey.id, oldHash, newHash);
      return getByHash(hash);
    };
    const { service: rotated, events } = service(backend, { pepper: NEW, previousPeppers: [OLD] });
    expect((await rotated.verify(key))?.id).toBe(apiKey.id);
    expect(events.filter((e) => e.type === 'api-key.rehashed')).toEqual([]);
  });

  it('answers an unknown key without a promise when the store knows every hash offline (MemoryBackend, an L1)', async () => {
    const { service: rotated } = service(new MemoryBackend(), { pepper: NEW, previousPeppers: [OLD, OLDER] });
    const verdict = rotated.check(rotated.format.generate());
    expect(verdict).not.toBeInstanceOf(Promise);
    expect(verdict).toEqual({ ok: false, code: 'invalid_api_key' });
  });

  it('introduces a pepper: null stands for the unpeppered SHA-256 of keys issued before it', async () => {
    const backend = new MemoryBackend();
    const { key, apiKey } = await service(backend).service.issue({ ownerId: 'o', name: 'k' });
    const { service: peppered, events } = service(backend, { pepper: NEW, previousPeppers: [null] });
    expect((await peppered.verify(key))?.id).toBe(apiKey.id);
    expect(events.map((e) => e.type)).toContain('api-key.rehashed');
    expect(await backend.getByHash(new KeyHasher().hash(key))).toBeNull();
    expect((await backend.getByHash(new KeyHasher(NEW).hash(key)))?.id).toBe(apiKey.id);
  });

  it('an L1 that missed the upgrade of another instance (no invalidation reached it) serves the key from then on', async () => {
    const primary = new MemoryBackend();
    const { key, apiKey } = await service(primary, { pepper: OLD }).service.issue({ ownerId: 'o', name: 'k' });
    const oldHash = new KeyHasher(OLD).hash(key);
    const newHash = new KeyHasher(NEW).hash(key);
    const l1 = new CachedBackend(primary, { ttl: 3_600_000, negativeTtl: 3_600_000 });
    const { service: b } = service(l1, { pepper: NEW, previousPeppers: [OLD] });
    // B remembers the new hash as unknown; then another instance, on no shared bus, upgrades the key.
    expect(await l1.getByHash(newHash)).toBeNull();
    expect(await primary.replaceHash(apiKey.id, oldHash, newHash)).toBe(true);
    for (let use = 0; use < 3; use++) expect((await b.verify(key))?.id).toBe(apiKey.id);
    expect(l1.peekByHash(newHash)?.record.id).toBe(apiKey.id);
  });

  it('refuses a revoked or expired key found under a previous pepper, and leaves its hash alone', async () => {
    const backend = new MemoryBackend();
    const old = service(backend, { pepper: OLD }).service;
    const { key, apiKey } = await old.issue({ ownerId: 'o', name: 'k' });
    await old.revoke(apiKey.id);
    const { service: rotated, events } = service(backend, { pepper: NEW, previousPeppers: [OLD] });
    expect(await rotated.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
    expect(events.filter((e) => e.type === 'api-key.rehashed')).toEqual([]);
    expect((await backend.getByHash(new KeyHasher(OLD).hash(key)))?.id).toBe(apiKey.id);
  });

  it('without replaceHash on the backend, keeps authenticating under the old pepper and warns once', async () => {
    const memory = new MemoryBackend();
    const { key, apiKey } = await service(memory, { pepper: OLD }).service.issue({ ownerId: 'o', name: 'k' });
    const { service: rotated, events } = service(requiredMethodsOf(memory), { pepper: NEW, previousPeppers: [OLD] });
    for (let i = 0; i < 3; i++) expect((await rotated.verify(key))?.id).toBe(apiKey.id);
    expect(events.filter((e) => e.type === 'api-key.rehashed')).toEqual([]);
    expect((await memory.getByHash(new KeyHasher(OLD).hash(key)))?.id).toBe(apiKey.id);
    expect(logs.lines).toHaveLength(1);
    expect(logs.lines[0]).toMatch(/^\[warn\] The API key backend has no replaceHash/);
  });

  it('still authenticates when the upgrade fails, warns once without a hash, and upgrades on a later use', async () => {
    const backend = new MemoryBackend();
    const { key, apiKey } = await service(backend, { pepper: OLD }).service.issue({ ownerId: 'o', name: 'k' });
    const oldHash = new KeyHasher(OLD).hash(key);
    let failures = 2;
    const replaceHash = backend.replaceHash.bind(backend);
    backend.replaceHash = async (id, from, to) => {
      if (failures-- > 0) throw new Error(`store refused hash ${from}`);
      return replaceHash(id, from, to);
    };
    const { service: rotated, events } = service(backend, { pepper: NEW, previousPeppers: [OLD] });
    expect((await rotated.verify(key))?.id).toBe(apiKey.id);
    expect((await rotated.verify(key))?.id).toBe(apiKey.id);
    expect(logs.lines).toHaveLength(1);
    expect(logs.lines[0]).toContain('Could not upgrade an API key hash');
    expect(logs.lines[0]).not.toContain(oldHash);
    expect((await rotated.verify(key))?.id).toBe(apiKey.id);
    expect(events.filter((e) => e.type === 'api-key.rehashed')).toHaveLength(1);
    expect(await backend.getByHash(oldHash)).toBeNull();
  });

  it('is validated at start-up', () => {
    const resolve = (previousPeppers: unknown, pepper: string | undefined = NEW) => () =>
      resolveApiAuthOptions({ pepper, previousPeppers } as never);
    expect(resolve('old')).toThrow('option "previousPeppers" must be an array');
    expect(resolve(['short'])).toThrow('"previousPeppers[0]" must be at least 16 bytes');
    expect(resolve([OLD, 42])).toThrow('"previousPeppers[1]" must be a string, a Buffer or null');
    expect(resolve([NEW])).toThrow('"previousPeppers[0]" repeats the current pepper');
    expect(resolve([OLD, Buffer.from(OLD)])).toThrow('"previousPeppers[1]" repeats');
    expect(() => resolveApiAuthOptions({ previousPeppers: [null] })).toThrow('"previousPeppers[0]" repeats the current pepper');
    expect(resolve([OLD, null])().previousPeppers).toEqual([OLD, null]);
  });
});
