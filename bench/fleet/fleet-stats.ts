/**
 * The fleet soak's rules and statistics, free of I/O so that test/unit/fleet-stats.spec.ts
 * can check them: percentiles, when a revoked key must be refused (the false-accept
 * rule), rate-limit exactness, and `lastUsedAt` writes per key per interval.
 */

/** Nearest-rank percentile of ascending `sorted` values (`p` in 0..1); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** Count, p50, p99 and max of `values` (in any order). */
export function summarize(values: readonly number[]): { count: number; p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? NaN };
}

/** A fault of the run, on the driver's clock: who it hits, from when until when. */
export interface FaultWindow {
  name: string;
  /** Instance indexes the fault cuts off or slows; every instance for a Redis failover. */
  instances: readonly number[];
  start: number;
  /** When the fault was lifted (or, for a failover, when the cluster was whole again); Infinity while it lasts. */
  end: number;
}

/**
 * From when every instance must refuse a key whose revoke (or rotation) an instance
 * acknowledged at `ackAt`: the documented L1 bound, `ackAt + l1Ms` (docs/caching.md,
 * "How stale can another instance be?": an invalidation reaches every L1 over the bus,
 * and an L1 that missed it drops the key within its TTL). No fault widens it: a write
 * through the cached provider is acknowledged only once the shared Redis cache holds the
 * key back (docs/redis-cache.md, "Writes while Redis is unreachable"); an instance that
 * cannot reach Redis refuses the write with a 503, and the driver retries elsewhere.
 */
export function revokeBound(ackAt: number, l1Ms: number): number {
  return ackAt + l1Ms;
}

/** What the driver knows about one key, on its own clock. */
export interface KeyTimeline {
  id: string;
  /** Requests sent from here on must be accepted ... */
  validFrom: number;
  /** ... if they complete before this (revoke sent, grace end, expiry). */
  validUntil: number;
  /** Requests sent from here on must be refused. */
  refusedFrom: number;
}

/** One request's verdict: the rule a status broke, if any. */
export type Verdict = 'ok' | 'false-accept' | 'false-reject' | 'unavailable' | 'transition';

/**
 * Judges one answer for a tracked key (or `undefined` for a key that was never valid).
 * A 200 as another key, or a 200 sent at or after `refusedFrom`, is a false accept; a
 * refusal (401/403) of a request that fell wholly inside the key's validity is a false
 * reject. 503 (and a transport failure, status 0) is never an accept: counted apart.
 * A rate-limited key's 429 is judged by {@link rateLimitVerdict}, not here.
 */
export function judge(key: KeyTimeline | undefined, sentAt: number, doneAt: number, status: number, answeredId: string | undefined): Verdict {
  if (status === 200) {
    if (!key || answeredId !== key.id || sentAt >= key.refusedFrom) return 'false-accept';
    return sentAt >= key.validFrom && doneAt < key.validUntil ? 'ok' : 'transition';
  }
  if (status === 503 || status === 0) return 'unavailable';
  if (key && sentAt >= key.validFrom && doneAt < key.validUntil && status !== 429) return 'false-reject';
  return key && sentAt < key.refusedFrom ? 'transition' : 'ok';
}

/** Answers one rate-limited key received across the fleet, by status. */
export interface RateLimitCounts {
  limit: number;
  accepted: number;
  limited: number;
  /** 503s and transport failures: each may or may not have been counted by Redis. */
  unknown: number;
}

/**
 * A limit shared by the fleet, over one window that outlasts the run, is exact when the
 * fleet accepted `limit` requests once more than `limit` were answered: never more, and
 * fewer only by requests whose outcome is unknown (a 503 after Redis counted it).
 */
export function rateLimitVerdict(counts: RateLimitCounts): { ok: boolean; exact: boolean } {
  const { limit, accepted, limited, unknown } = counts;
  if (accepted > limit) return { ok: false, exact: false };
  if (limited === 0) return { ok: true, exact: accepted + unknown <= limit };
  return { ok: accepted >= limit - unknown, exact: accepted === limit };
}

/** `lastUsedAt` writes of the fleet: how many per key per interval. */
export interface UsageWriteStats {
  keys: number;
  writes: number;
  /** Mean writes per key per interval, over the intervals in which a key was written. */
  perInterval: number;
  /** Most writes of one key in one interval. */
  maxPerInterval: number;
  /** Consecutive writes of one key closer than the interval (minus the slack). */
  closePairs: number;
  /** Those of them not explained by a fault window (either write outside every fault). */
  closePairsOutsideFaults: number;
}

/**
 * Counts writes per key per interval: buckets of `intervalMs` from `origin`. Two writes
 * of one key closer than `intervalMs - slackMs` break the fleet-wide "once per interval"
 * (`slackMs` allows for the time between a claim in Redis and its write in the
 * database, which differs from one write to the next); during a fault, and for
 * `settleMs` after it while clients find their way back, the coordinator is documented
 * to let extra writes through, so those are counted apart.
 */
export function usageWriteStats(
  writes: ReadonlyMap<string, readonly number[]>,
  intervalMs: number,
  origin: number,
  slackMs: number,
  faults: readonly FaultWindow[],
  settleMs: number,
): UsageWriteStats {
  let total = 0;
  let buckets = 0;
  let maxPerInterval = 0;
  let closePairs = 0;
  let closePairsOutsideFaults = 0;
  const inFault = (at: number) => faults.some((f) => at >= f.start && at <= f.end + settleMs);
  for (const times of writes.values()) {
    const sorted = [...times].sort((a, b) => a - b);
    total += sorted.length;
    const perBucket = new Map<number, number>();
    for (const at of sorted) {
      const bucket = Math.floor((at - origin) / intervalMs);
      perBucket.set(bucket, (perBucket.get(bucket) ?? 0) + 1);
    }
    buckets += perBucket.size;
    for (const n of perBucket.values()) maxPerInterval = Math.max(maxPerInterval, n);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]! - sorted[i - 1]! >= intervalMs - slackMs) continue;
      closePairs++;
      if (!inFault(sorted[i]!) && !inFault(sorted[i - 1]!)) closePairsOutsideFaults++;
    }
  }
  return { keys: writes.size, writes: total, perInterval: buckets === 0 ? 0 : total / buckets, maxPerInterval, closePairs, closePairsOutsideFaults };
}
