import { describe, expect, it } from 'vitest';
import { ApiKeyService, MemoryBackend, MemoryRateLimiter } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from '../../lib/api-auth.options.js';
import { CountingBackend } from '../fixtures/counting.backend.js';
import { mayReleaseCounters } from '../../lib/limits/counter-release.js';
import { replacementIdFor } from '../../lib/replacement-id.js';
import { describeCounterRelease } from '../fixtures/counter-release.suite.js';

describeCounterRelease('MemoryRateLimiter', async () => {
  const limiter = new MemoryRateLimiter();
  return {
    limiter,
    // Each test has its own limiter, so every counter it holds is under the keys the test used.
    countersOf: async () => limiter.size,
  };
});

describe('mayReleaseCounters', () => {
  const policy = { quota: { limit: 1 } };

  it("releases a key's own counters, implicit or named", () => {
    expect(mayReleaseCounters({ id: 'a', policy: null, rotatedFromId: null })).toBe(true);
    expect(mayReleaseCounters({ id: 'a', policy: { ...policy, counterKey: 'a' }, rotatedFromId: null })).toBe(true);
  });

  it("releases a rotation predecessor's counters, however far back the chain starts", () => {
    const second = replacementIdFor('first');
    const third = replacementIdFor(second);
    expect(mayReleaseCounters({ id: third, policy: { ...policy, counterKey: 'first' }, rotatedFromId: second })).toBe(true);
  });

  it('never releases a counter key that is not the lineage of the key', () => {
    expect(mayReleaseCounters({ id: 'child', policy: { ...policy, counterKey: 'parent' }, rotatedFromId: null })).toBe(false);
    // Claims a rotation, but its id is not derived from the counter key.
    expect(mayReleaseCounters({ id: 'other', policy: { ...policy, counterKey: 'team' }, rotatedFromId: 'x' })).toBe(false);
  });
});

describe('ApiKeyService.delete and counters, by policy', () => {
  it('a key without a policy is deleted with one read and no scan of its owner; a key with one has its counters removed', async () => {
    const backend = new CountingBackend(new MemoryBackend());
    const limiter = new MemoryRateLimiter();
    const service = new ApiKeyService(resolveApiAuthOptions({ backend, rateLimiter: limiter, prefix: 'cr_', trackUsage: false }));

    const plain = await service.issue({ ownerId: 'o', name: 'plain' });
    for (let i = 0; i < 3; i++) await service.issue({ ownerId: 'o', name: `other ${i}` });
    await service.delete(plain.apiKey.id);
    expect(backend.calls('getById')).toBe(1);
    expect(backend.calls('listByOwner')).toBe(0);

    const limited = await service.issue({ ownerId: 'o', name: 'limited', policy: { quota: { limit: 5 } } });
    await limiter.consume(limited.apiKey.id, { rateLimits: [], quota: { limit: 5 }, cost: 1 });
    expect(limiter.size).toBeGreaterThan(0);
    await service.delete(limited.apiKey.id);
    expect(backend.calls('listByOwner')).toBe(1);
    expect(limiter.size).toBe(0);
  });
});
