import { describe, expect, it } from 'vitest';
import { formatGeneration, generationLeases, isLeased, otherLiveLeases } from '../../lib/redis/redis-cache.generation.js';

describe('Redis cache generation values with write leases (redis-cache.generation.ts)', () => {
  const lease = (writer: string, until: number) => ({ writer, until });

  it('writes a value without leases as the token alone, as before leases existed', () => {
    expect(formatGeneration('tok', [])).toBe('tok');
    expect(generationLeases('tok')).toEqual([]);
    expect(isLeased('tok', 0)).toBe(false);
  });

  it('reads back the leases it wrote', () => {
    const value = formatGeneration('tok', [lease('w1', 1_000), lease('w2', 2_000)]);
    expect(generationLeases(value)).toEqual([lease('w1', 1_000), lease('w2', 2_000)]);
  });

  it('holds the key while any lease runs, and frees it once every lease has ended', () => {
    const value = formatGeneration('tok', [lease('w1', 1_000), lease('w2', 2_000)]);
    expect(isLeased(value, 999)).toBe(true);
    expect(isLeased(value, 1_999)).toBe(true);
    expect(isLeased(value, 2_000)).toBe(false);
  });

  it("carries on other writers' running leases, never the writer's own or ended ones", () => {
    const value = formatGeneration('tok', [lease('w1', 1_000), lease('w2', 2_000), lease('w3', 3_000)]);
    expect(otherLiveLeases(value, 1_500, 'w3')).toEqual([lease('w2', 2_000)]);
    expect(otherLiveLeases(undefined, 0)).toEqual([]);
  });

  it('takes a lease it cannot read for one that never ends, and drops it on the next write', () => {
    const value = 'tok~w1.zz!~w2';
    expect(isLeased(value, Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(otherLiveLeases(value, 0)).toEqual([]);
  });
});
