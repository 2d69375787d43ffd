import { describe, expect, it } from 'vitest';
import { ApiKeyService, MemoryBackend, MemoryRateLimiter } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { CountingBackend } from '../fixtures/counting.backend.js';
import { describeCounterRelease } from '../fixtures/counter-release.suite.js';

describeCounterRelease('MemoryRateLimiter', async () => {
  const limiter = new MemoryRateLimiter();
  return {
    limiter,
    // Each test has its own limiter, so every counter it holds is under the keys the test used.
    countersOf: async () => limiter.size,
  };
});

describe('ApiKeyService.delete and the store', () => {
  it('without listeners, one store call: no read, no scan of the owner, whatever the policy', async () => {
    const backend = new CountingBackend(new MemoryBackend());
    const limiter = new MemoryRateLimiter();
    const service = new ApiKeyService(resolveApiAuthOptions({ backend, rateLimiter: limiter, prefix: 'cr_', trackUsage: false }));
    const limited = await service.issue({ ownerId: 'o', name: 'limited', policy: { quota: { limit: 5 } } });
    for (let i = 0; i < 3; i++) await service.issue({ ownerId: 'o', name: `other ${i}` });
    await limiter.consume(limited.apiKey.id, { rateLimits: [], quota: { limit: 5 }, cost: 1 });
    await service.delete(limited.apiKey.id);
    expect(backend.calls('delete')).toBe(1);
    expect(backend.calls('getById')).toBe(0);
    expect(backend.calls('listByOwner')).toBe(0);
    expect(limiter.size).toBe(1);
  });
});
