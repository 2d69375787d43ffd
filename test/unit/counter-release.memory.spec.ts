import { describe, expect, it } from 'vitest';
import { MemoryRateLimiter } from 'nestjs-api-auth';
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
