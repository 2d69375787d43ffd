import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LegacyKeyFormat } from '../../lib/keys/legacy-key-format.js';
import { ApiKeyValidationError, DuplicateApiKeyError } from 'nestjs-api-auth';
import { makeService } from '../fixtures/service.js';

const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');
const LEGACY_KEY = 'acme_live_9fJ2kLm4Pq8Rs1Tv3Wx5Yz7Ab0Cd';

/** The validation error `promise` rejects with; fails the test when it resolves. */
async function validationError(promise: Promise<unknown>): Promise<ApiKeyValidationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApiKeyValidationError);
  return error as ApiKeyValidationError;
}

describe('ApiKeyService.import', () => {
  it("stores a plaintext key of this deployment's format, which then verifies; the plaintext is stored nowhere", async () => {
    const { service, backend } = makeService();
    const key = service.format.generate();
    const createdAt = new Date('2024-01-02T03:04:05.678Z');
    const view = await service.import({ key }, { ownerId: 'migrated', name: 'from the old system', scopes: ['read'], createdAt });
    expect(view).toMatchObject({ ownerId: 'migrated', scopes: ['read'], createdAt, hint: `test_…${key.slice(-4)}`, environment: null });
    expect(view).not.toHaveProperty('keyHash');
    expect((await service.verify(key))?.id).toBe(view.id);
    const stored = await backend.getById(view.id);
    expect(stored?.keyHash).toBe(sha256(key));
    expect(JSON.stringify(stored)).not.toContain(key);
  });

  it('refuses a plaintext the guard would never accept, without echoing it', async () => {
    const { service, backend } = makeService();
    const error = await validationError(service.import({ key: LEGACY_KEY }, { ownerId: 'o', name: 'n' }));
    expect(error.field).toBe('key');
    expect(error.message).not.toContain(LEGACY_KEY);
    expect(backend.calls.create).toBe(0);
  });

  it('accepts keys of a legacyKeyPrefixes prefix, which the guard then verifies without the checksum check', async () => {
    const { service, backend } = makeService({ legacyKeyPrefixes: ['acme_live_'] });
    const view = await service.import({ key: LEGACY_KEY }, { ownerId: 'migrated', name: 'legacy' });
    expect(view.hint).toBe('acme_live_…b0Cd');
    expect((await service.verify(LEGACY_KEY))?.id).toBe(view.id);
    // Still refused offline: another prefix, a too-short value, a space.
    const lookups = backend.calls.getByHash;
    for (const bad of ['other_9fJ2kLm4Pq8Rs1Tv3Wx5Yz7Ab0Cd', 'acme_live_short', 'acme_live_ 9fJ2kLm4Pq8Rs1Tv3Wx5Yz7Ab0Cd']) {
      expect(await service.verify(bad)).toBeNull();
    }
    expect(backend.calls.getByHash).toBe(lookups);
    // A well-shaped unknown legacy key costs a lookup and is refused.
    expect(await service.verify(`${LEGACY_KEY}X`)).toBeNull();
    expect(backend.calls.getByHash).toBe(lookups + 1);
    // Keys of the deployment's own format never take the legacy path.
    const own = await service.issue({ ownerId: 'o', name: 'own' });
    expect((await service.verify(own.key))?.id).toBe(own.apiKey.id);
  });

  it('imports a SHA-256 hash the old system stored; the plaintext then verifies', async () => {
    const { service } = makeService({ legacyKeyPrefixes: ['acme_live_'] });
    const view = await service.import(
      { keyHash: sha256(LEGACY_KEY).toUpperCase(), hint: 'acme_live_…b0Cd' },
      { ownerId: 'migrated', name: 'by hash', metadata: { plan: 'gold' } },
    );
    expect(view).toMatchObject({ hint: 'acme_live_…b0Cd', metadata: { plan: 'gold' } });
    expect((await service.verify(LEGACY_KEY))?.id).toBe(view.id);
    const noHint = await service.import({ keyHash: sha256('acme_live_anotherkey0000000') }, { ownerId: 'm', name: 'n' });
    expect(noHint.hint).toBe('(imported)');
  });

  it('refuses a hash when a pepper is set, a malformed hash, and a bad hint', async () => {
    const peppered = makeService({ pepper: 'a-pepper-of-at-least-16-bytes' }).service;
    expect((await validationError(peppered.import({ keyHash: sha256(LEGACY_KEY) }, { ownerId: 'o', name: 'n' }))).field).toBe('keyHash');
    const { service } = makeService();
    expect((await validationError(service.import({ keyHash: 'abc' }, { ownerId: 'o', name: 'n' }))).field).toBe('keyHash');
    expect((await validationError(service.import({ keyHash: sha256('x'), hint: 'a\nb' }, { ownerId: 'o', name: 'n' }))).field).toBe('hint');
  });

  it('refuses a key that is already stored, naming no hash', async () => {
    const { service } = makeService();
    const key = service.format.generate();
    await service.import({ key }, { ownerId: 'o', name: 'first' });
    const error = await service.import({ key }, { ownerId: 'o', name: 'again' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DuplicateApiKeyError);
    expect((error as Error).message).not.toContain(sha256(key));
    const issued = await service.issue({ ownerId: 'o', name: 'issued' });
    await expect(service.import({ keyHash: sha256(issued.key) }, { ownerId: 'o', name: 'dup' })).rejects.toBeInstanceOf(DuplicateApiKeyError);
  });

  it('validates the rest as issue does, plus a creation time not in the future', async () => {
    const { service } = makeService();
    const key = () => service.format.generate();
    expect((await validationError(service.import({ key: key() }, { ownerId: '', name: 'n' }))).field).toBe('ownerId');
    expect((await validationError(service.import({ key: key() }, { ownerId: 'o', name: 'n', createdAt: new Date(Date.now() + 60_000) }))).field).toBe('createdAt');
    expect((await validationError(service.import({ key: key() }, { ownerId: 'o', name: 'n', policy: { rateLimit: [] } as never }))).field).toBe('policy');
    expect((await validationError(service.import(null as never, { ownerId: 'o', name: 'n' }))).field).toBe('source');
  });

  it('derives the environment from the prefix, and refuses a contradicting one', async () => {
    const { service } = makeService({ environment: 'live', acceptEnvironments: ['live', 'test'], legacyKeyPrefixes: ['acme_live_'] });
    // A test-environment key minted elsewhere (here: minted, then forgotten).
    const minted = await service.issue({ ownerId: 'o', name: 'test', environment: 'test' });
    await service.delete(minted.apiKey.id);
    const imported = await service.import({ key: minted.key }, { ownerId: 'o', name: 'again' });
    expect(imported.environment).toBe('test');
    const other = await service.issue({ ownerId: 'o', name: 'live' });
    await service.delete(other.apiKey.id);
    expect((await validationError(service.import({ key: other.key }, { ownerId: 'o', name: 'n', environment: 'test' }))).field).toBe('environment');
    // A legacy key takes the given environment, or the deployment's.
    expect((await service.import({ key: LEGACY_KEY }, { ownerId: 'o', name: 'legacy' })).environment).toBe('live');
  });
});

describe('legacy key hints', () => {
  it('show the last four characters only when at least 16 follow the prefix, so a short secret is not given away', () => {
    const format = new LegacyKeyFormat(['acme_live_', 'x_']);
    expect(format.hint('acme_live_0123456789abcdef')).toBe('acme_live_…cdef');
    // 16 characters in all, 14 after the prefix: the tail would be most of the secret.
    expect(format.hint('x_0123456789abcd')).toBe('x_…');
    const long = `x_${'a'.repeat(15)}Z`;
    expect(format.hint(long)).toBe('x_…aaaZ');
  });
});
