import { ApiKeyService } from 'nestjs-api-auth';
import { describe, expect, it } from 'vitest';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { makeService } from '../fixtures/service.js';

const POLICY = { rateLimits: [{ name: 'burst', limit: 10, windowMs: 1_000 }] };

describe('defaultScopes and defaultPolicy', () => {
  it('apply to issue and import when the caller gives none', async () => {
    const { service } = makeService({ defaultScopes: ['read', 'read'], defaultPolicy: POLICY });
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'k' });
    expect(apiKey.scopes).toEqual(['read']);
    expect(apiKey.policy).toEqual(POLICY);
    const imported = await service.import({ key: service.format.generate() }, { ownerId: 'o', name: 'i' });
    expect(imported.scopes).toEqual(['read']);
    expect(imported.policy).toEqual(POLICY);
    expect(service.defaultScopes).toEqual(['read']);
  });

  it('leave an explicit value alone, [] and null included', async () => {
    const { service } = makeService({ defaultScopes: ['read'], defaultPolicy: POLICY });
    const own = await service.issue({ ownerId: 'o', name: 'k', scopes: ['write'], policy: { allowedIps: ['10.0.0.0/8'] } });
    expect(own.apiKey.scopes).toEqual(['write']);
    expect(own.apiKey.policy).toEqual({ allowedIps: ['10.0.0.0/8'] });
    const none = await service.issue({ ownerId: 'o', name: 'k', scopes: [], policy: null });
    expect(none.apiKey.scopes).toEqual([]);
    expect(none.apiKey.policy).toBeNull();
  });

  it('give each key its own copy: changing one key never changes the defaults', async () => {
    const defaultScopes = ['read'];
    const { service } = makeService({ defaultScopes, defaultPolicy: POLICY });
    const first = await service.issue({ ownerId: 'o', name: 'k' });
    await service.update(first.apiKey.id, { scopes: ['other'], policy: null });
    defaultScopes.push('mutated after start-up');
    const second = await service.issue({ ownerId: 'o', name: 'k' });
    expect(second.apiKey.scopes).toEqual(['read']);
    expect(second.apiKey.policy).toEqual(POLICY);
  });

  it('are validated at start-up with the rules every key is held to', () => {
    const start = (options: object) => () => new ApiKeyService(resolveApiAuthOptions(options));
    expect(start({ defaultScopes: 'read' })).toThrow('option "defaultScopes" must be an array');
    expect(start({ defaultScopes: ['has space'] })).toThrow('option "defaultScopes" is invalid');
    expect(start({ defaultScopes: ['a', 'b'], maxScopes: 1 })).toThrow('at most 1 scopes');
    expect(start({ defaultPolicy: 'strict' })).toThrow('option "defaultPolicy" must be a policy object');
    expect(start({ defaultPolicy: { rateLimits: [{ name: 'x', limit: 0, windowMs: 1000 }] } })).toThrow('option "defaultPolicy" is invalid');
    expect(start({ defaultPolicy: { ...POLICY, counterKey: 'shared' } })).toThrow('must not set "counterKey"');
    expect(start({ defaultScopes: [], defaultPolicy: POLICY })).not.toThrow();
  });
});
