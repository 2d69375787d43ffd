import { describe, expect, it } from 'vitest';
import { ApiKeyValidationError, type ApiKeyPolicy } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { makeService } from '../fixtures/service.js';

/** The field a policy is refused on, or `null` when it is accepted. */
async function refusedField(policy: unknown): Promise<string | null> {
  const { service } = makeService();
  try {
    await service.issue({ ownerId: 'o', name: 'n', policy: policy as ApiKeyPolicy });
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(ApiKeyValidationError);
    return (error as ApiKeyValidationError).field;
  }
}

describe('key policies', () => {
  it('stores a valid policy as given, and no policy as null', async () => {
    const { service } = makeService();
    const policy: ApiKeyPolicy = {
      rateLimits: [{ name: 'burst', limit: 5, windowMs: 1_000 }, { name: 'daily', limit: 10_000, windowMs: 86_400_000 }],
      quota: { limit: 100, refillIntervalMs: 3_600_000 },
      allowedIps: ['10.0.0.0/8', '2001:db8::/32'],
    };
    expect((await service.issue({ ownerId: 'o', name: 'n', policy })).apiKey.policy).toEqual(policy);
    for (const none of [undefined, null, {}]) {
      expect((await service.issue({ ownerId: 'o', name: 'n', policy: none as ApiKeyPolicy })).apiKey.policy).toBeNull();
    }
  });

  it('refuses malformed policies, naming the field', async () => {
    expect(await refusedField('fast')).toBe('policy');
    expect(await refusedField({ rateLimit: [] })).toBe('policy');
    expect(await refusedField({ rateLimits: [] })).toBe('policy.rateLimits');
    expect(await refusedField({ rateLimits: Array.from({ length: 11 }, (_, i) => ({ name: `r${i}`, limit: 1, windowMs: 1 })) })).toBe('policy.rateLimits');
    expect(await refusedField({ rateLimits: [{ name: 'a b', limit: 1, windowMs: 1 }] })).toBe('policy.rateLimits[0].name');
    expect(await refusedField({ rateLimits: [{ name: 'a', limit: 1, windowMs: 1 }, { name: 'a', limit: 2, windowMs: 2 }] })).toBe('policy.rateLimits[1].name');
    expect(await refusedField({ rateLimits: [{ name: 'a', limit: 0, windowMs: 1 }] })).toBe('policy.rateLimits[0].limit');
    expect(await refusedField({ rateLimits: [{ name: 'a', limit: 1.5, windowMs: 1 }] })).toBe('policy.rateLimits[0].limit');
    expect(await refusedField({ rateLimits: [{ name: 'a', limit: 1, windowMs: 0 }] })).toBe('policy.rateLimits[0].windowMs');
    expect(await refusedField({ rateLimits: [{ name: 'a', limit: 1, windowMs: 1, burst: 2 }] })).toBe('policy.rateLimits[0]');
    expect(await refusedField({ quota: { limit: -1 } })).toBe('policy.quota.limit');
    expect(await refusedField({ quota: { limit: 1, refillIntervalMs: 0 } })).toBe('policy.quota.refillIntervalMs');
    expect(await refusedField({ quota: { remaining: 1 } })).toBe('policy.quota');
    expect(await refusedField({ allowedIps: [] })).toBe('policy.allowedIps');
    expect(await refusedField({ allowedIps: ['10.0.0.0/8', '10.0.0.0/40'] })).toBe('policy.allowedIps[1]');
    expect(await refusedField({ allowedIps: ['example.com'] })).toBe('policy.allowedIps[0]');
    expect(await refusedField({ counterKey: 'has space' })).toBe('policy.counterKey');
    expect(await refusedField({ quota: { limit: 0 } })).toBeNull();
  });

  it('update replaces the policy, or removes it with null', async () => {
    const { service } = makeService();
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'n', policy: { quota: { limit: 5 } } });
    expect((await service.update(apiKey.id, { policy: { allowedIps: ['127.0.0.1'] } })).policy).toEqual({ allowedIps: ['127.0.0.1'] });
    expect((await service.update(apiKey.id, { policy: null })).policy).toBeNull();
    await expect(service.update(apiKey.id, { policy: { quota: { limit: 'x' } } as never })).rejects.toBeInstanceOf(ApiKeyValidationError);
  });

  it('a view of the record is a copy: changing it changes nothing stored', async () => {
    const { service } = makeService();
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'n', policy: { allowedIps: ['127.0.0.1'] } });
    apiKey.policy!.allowedIps!.push('0.0.0.0/0');
    expect((await service.get(apiKey.id))?.policy).toEqual({ allowedIps: ['127.0.0.1'] });
  });
});

describe('limit, event and import options at start-up', () => {
  it('name the bad option', () => {
    expect(() => resolveApiAuthOptions({ rateLimiter: {} as never })).toThrow(/"rateLimiter" must implement RateLimiter/);
    expect(() => resolveApiAuthOptions({ events: { on: () => undefined } as never })).toThrow(/"events" must have an emit/);
    expect(() => resolveApiAuthOptions({ onEvent: 'log' as never })).toThrow(/"onEvent" must be a function/);
    expect(() => resolveApiAuthOptions({ legacyKeyPrefixes: ['ok_', 'has space'] })).toThrow(/legacyKeyPrefixes/);
    const resolved = resolveApiAuthOptions({});
    expect(resolved.emitEvent).toBeNull();
    expect(resolved.rateLimiter.constructor.name).toBe('MemoryRateLimiter');
  });
});
