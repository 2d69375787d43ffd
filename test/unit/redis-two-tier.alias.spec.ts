import { describe, expect, it } from 'vitest';
import { createRedisCachedBackend, createRedisTwoTierBackend, RedisCachedBackend, RedisTwoTierBackend } from 'nestjs-api-auth/redis';

// RedisCachedBackend was renamed RedisTwoTierBackend (it read as RedisCacheBackend, the
// L2 alone); the old names stay as deprecated aliases of the same values.
describe('the deprecated names of RedisTwoTierBackend', () => {
  it('are the renamed class and factory themselves', () => {
    expect(RedisCachedBackend).toBe(RedisTwoTierBackend);
    expect(createRedisCachedBackend).toBe(createRedisTwoTierBackend);
    expect(RedisTwoTierBackend.name).toBe('RedisTwoTierBackend');
  });
});
