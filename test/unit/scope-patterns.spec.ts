import { describe, expect, it } from 'vitest';
import { ApiKeyValidationError } from 'nestjs-api-auth';
import { grantsEveryScope, grantsScope, grantsSomeScope, scopeGrammarError } from '../../lib/scopes/scope-patterns.js';
import { refusalForResult, refusalForScopes, scopesWithin } from '../../lib/management/self-service.rules.js';
import { makeService } from '../fixtures/service.js';

describe('scope patterns: the grammar', () => {
  it('accepts literals and patterns whose whole last segment is "*"', () => {
    for (const scope of ['reports:read', 'reports:*', 'reports:eu:*', 'a:*', 'api-keys:admin', 'x.y:*']) {
      expect(scopeGrammarError(scope)).toBeNull();
    }
  });

  it('refuses "*" alone, a "*" inside or before the last segment, and an empty segment before it', () => {
    expect(scopeGrammarError('*')).toMatch(/alone/);
    for (const scope of ['reports*', '*:read', 'reports:*:read', 're*:read', 'reports:r*', 'reports:**', ':*', 'reports::*', '**']) {
      expect(scopeGrammarError(scope), scope).toMatch(/whole last segment/);
    }
  });
});

describe('scope patterns: what a key holding them is granted', () => {
  it('grants every scope under the prefix, at any depth, but not the prefix itself nor a neighbour', () => {
    const held = ['reports:*'];
    expect(grantsScope(held, 'reports:read')).toBe(true);
    expect(grantsScope(held, 'reports:write')).toBe(true);
    expect(grantsScope(held, 'reports:eu:read')).toBe(true);
    expect(grantsScope(held, 'reports')).toBe(false);
    expect(grantsScope(held, 'reports:')).toBe(false);
    expect(grantsScope(held, 'reportsx:read')).toBe(false);
    expect(grantsScope(held, 'billing:read')).toBe(false);
  });

  it('matches literals exactly, as before', () => {
    expect(grantsScope(['reports:read'], 'reports:read')).toBe(true);
    expect(grantsScope(['reports:read'], 'reports:write')).toBe(false);
    expect(grantsScope(['reports:read'], 'reports:*')).toBe(false);
    expect(grantsScope([], 'reports:read')).toBe(false);
  });

  it('answers all-of and any-of requirements', () => {
    expect(grantsEveryScope(['reports:*', 'billing:read'], ['reports:read', 'reports:write', 'billing:read'])).toBe(true);
    expect(grantsEveryScope(['reports:*'], ['reports:read', 'billing:read'])).toBe(false);
    expect(grantsSomeScope(['reports:*'], ['billing:read', 'reports:read'])).toBe(true);
    expect(grantsSomeScope(['reports:read'], ['billing:read', 'reports:write'])).toBe(false);
  });

  it('reads a frozen list (the L1 hands out one per key) as well as a fresh copy of it', () => {
    const held = Object.freeze(['a:*', 'b:read']);
    expect(grantsScope(held, 'a:x')).toBe(true);
    expect(grantsScope(held, 'a:y')).toBe(true);
    expect(grantsScope([...held], 'a:z')).toBe(true);
  });
});

describe('scope patterns: self-service escalation', () => {
  const caller = { id: 'c', scopes: ['api-keys:self', 'reports:*'], expiresAt: null };
  const narrow = { id: 'n', scopes: ['api-keys:self', 'reports:read'], expiresAt: null };

  it('a key holding reports:* may mint reports:read, reports:write and the narrower pattern reports:eu:*', () => {
    expect(scopesWithin(['reports:read', 'reports:write', 'reports:eu:*'], caller.scopes)).toBe(true);
    expect(refusalForResult(caller, { id: 'x', scopes: ['reports:read'], expiresAt: null })).toBeNull();
    expect(refusalForScopes(caller, { scopes: ['reports:*'] })).toBeNull();
  });

  it('a key holding reports:read must not mint reports:* nor manage a key holding it', () => {
    expect(scopesWithin(['reports:*'], narrow.scopes)).toBe(false);
    expect(refusalForResult(narrow, { id: 'x', scopes: ['reports:*'], expiresAt: null })?.code).toBe('scope_escalation');
    expect(refusalForScopes(narrow, { scopes: ['reports:*'] })?.code).toBe('scope_escalation');
  });

  it('a narrower pattern never covers a wider one', () => {
    expect(scopesWithin(['reports:*'], ['reports:eu:*'])).toBe(false);
  });
});

describe('scope patterns: validated by the service on issue and update', () => {
  it('stores patterns and refuses other wildcard forms with ApiKeyValidationError on "scopes"', async () => {
    const { service } = makeService();
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'p', scopes: ['reports:*'] });
    expect(apiKey.scopes).toEqual(['reports:*']);
    for (const bad of ['*', 'reports*', '*:read', 'reports:*:read']) {
      await expect(service.issue({ ownerId: 'o', name: 'bad', scopes: [bad] })).rejects.toThrow(ApiKeyValidationError);
      const error = await service.update(apiKey.id, { scopes: [bad] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ApiKeyValidationError);
      expect((error as ApiKeyValidationError).field).toBe('scopes');
    }
    expect((await service.get(apiKey.id))?.scopes).toEqual(['reports:*']);
  });
});
