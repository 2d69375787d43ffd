import { describe, expect, it } from 'vitest';
import { judge, percentile, rateLimitVerdict, revokeBound, summarize, usageWriteStats, type FaultWindow } from '../../bench/fleet/fleet-stats.js';

describe('fleet soak statistics (bench/fleet/fleet-stats.ts)', () => {
  describe('percentile and summarize', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);

    it('takes the nearest rank', () => {
      expect(percentile(hundred, 0.5)).toBe(50);
      expect(percentile(hundred, 0.99)).toBe(99);
      expect(percentile(hundred, 1)).toBe(100);
      expect(percentile(hundred, 0)).toBe(1);
      expect(percentile([7], 0.99)).toBe(7);
      expect(percentile([1, 2, 3], 0.5)).toBe(2);
    });

    it('is NaN for no values, so an empty run never reads as 0 ms', () => {
      expect(percentile([], 0.5)).toBeNaN();
      expect(summarize([])).toMatchObject({ count: 0, max: NaN });
    });

    it('sorts its input first', () => {
      expect(summarize([...hundred].reverse())).toEqual({ count: 100, p50: 50, p99: 99, max: 100 });
    });
  });

  describe('revokeBound: from when every instance must refuse a revoked key', () => {
    it('is the acknowledgement plus the L1 bound, whatever fault was in force', () => {
      expect(revokeBound(5_000, 1_000)).toBe(6_000);
      expect(revokeBound(15_000, 250)).toBe(15_250);
    });

    it('is not widened by a partition of the writer: a 200 one L1 ttl after the ack is a false accept', () => {
      const key = { id: 'k', validFrom: 1_000, validUntil: 14_000, refusedFrom: revokeBound(15_000, 1_000) };
      expect(judge(key, 16_000, 16_001, 200, 'k')).toBe('false-accept');
      expect(judge(key, 15_999, 16_001, 200, 'k')).toBe('transition');
    });
  });

  describe('judge: one answer against the key timeline', () => {
    const key = { id: 'k', validFrom: 1_000, validUntil: 5_000, refusedFrom: 6_000 };

    it('accepts a 200 as the key inside its validity', () => {
      expect(judge(key, 1_000, 1_010, 200, 'k')).toBe('ok');
    });

    it('calls a 200 at or after the bound, as another key, or for a never-valid key a false accept', () => {
      expect(judge(key, 6_000, 6_001, 200, 'k')).toBe('false-accept');
      expect(judge(key, 2_000, 2_001, 200, 'other')).toBe('false-accept');
      expect(judge(undefined, 2_000, 2_001, 200, 'k')).toBe('false-accept');
    });

    it('lets the transition between the end and the bound go either way', () => {
      expect(judge(key, 5_500, 5_501, 200, 'k')).toBe('transition');
      expect(judge(key, 5_500, 5_501, 401, undefined)).toBe('transition');
      // A request that was still running when the key ended is not held to either side.
      expect(judge(key, 4_990, 5_010, 401, undefined)).toBe('transition');
    });

    it('calls a refusal inside the validity a false reject, but not a 429 nor a 503', () => {
      expect(judge(key, 2_000, 2_001, 401, undefined)).toBe('false-reject');
      expect(judge(key, 2_000, 2_001, 403, undefined)).toBe('false-reject');
      expect(judge(key, 2_000, 2_001, 429, undefined)).not.toBe('false-reject');
      expect(judge(key, 2_000, 2_001, 503, undefined)).toBe('unavailable');
      expect(judge(key, 2_000, 2_001, 0, undefined)).toBe('unavailable');
    });

    it('expects refusals after the bound and for unknown keys', () => {
      expect(judge(key, 6_000, 6_001, 401, undefined)).toBe('ok');
      expect(judge(undefined, 6_000, 6_001, 401, undefined)).toBe('ok');
    });
  });

  describe('rateLimitVerdict: a fleet-wide limit over one window', () => {
    it('is exact when the fleet accepted the limit and refused the rest', () => {
      expect(rateLimitVerdict({ limit: 20, accepted: 20, limited: 80, unknown: 0 })).toEqual({ ok: true, exact: true });
    });

    it('fails when the fleet accepted more than the limit, whatever the 503s', () => {
      expect(rateLimitVerdict({ limit: 20, accepted: 21, limited: 80, unknown: 5 })).toEqual({ ok: false, exact: false });
    });

    it('allows fewer only by the answers whose outcome is unknown', () => {
      expect(rateLimitVerdict({ limit: 20, accepted: 18, limited: 80, unknown: 2 })).toEqual({ ok: true, exact: false });
      expect(rateLimitVerdict({ limit: 20, accepted: 17, limited: 80, unknown: 2 })).toEqual({ ok: false, exact: false });
    });

    it('judges a key that never reached its limit by what it accepted', () => {
      expect(rateLimitVerdict({ limit: 20, accepted: 12, limited: 0, unknown: 0 })).toEqual({ ok: true, exact: true });
    });
  });

  describe('usageWriteStats: writes per key per interval', () => {
    const faults: FaultWindow[] = [{ name: 'partition', instances: [1], start: 20_000, end: 25_000 }];

    it('counts one write per interval as 1.00, with no close pairs', () => {
      const stats = usageWriteStats(new Map([['a', [100, 5_100, 10_200]], ['b', [3_000]]]), 5_000, 0, 500, faults, 0);
      expect(stats).toEqual({ keys: 2, writes: 4, perInterval: 1, maxPerInterval: 1, closePairs: 0, closePairsOutsideFaults: 0 });
    });

    it('flags writes of one key closer than the interval less the slack', () => {
      const stats = usageWriteStats(new Map([['a', [1_000, 1_200, 5_800]]]), 5_000, 0, 500, faults, 0);
      // 1000 and 1200: 200 ms apart; 1200 and 5800: 4600 ms, within the 500 ms slack of 5 s.
      expect(stats).toMatchObject({ writes: 3, maxPerInterval: 2, closePairs: 1, closePairsOutsideFaults: 1 });
      expect(stats.perInterval).toBeCloseTo(1.5);
    });

    it('counts close pairs during a fault, or within the settling time after it, apart', () => {
      const writes = new Map([['a', [21_000, 21_100, 26_000, 26_050, 40_000, 40_010]]]);
      expect(usageWriteStats(writes, 5_000, 0, 500, faults, 0)).toMatchObject({ closePairs: 3, closePairsOutsideFaults: 2 });
      expect(usageWriteStats(writes, 5_000, 0, 500, faults, 5_000)).toMatchObject({ closePairs: 3, closePairsOutsideFaults: 1 });
    });
  });
});
