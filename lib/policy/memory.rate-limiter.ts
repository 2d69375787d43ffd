import type { QuotaRule, RateLimitRule } from './api-key-policy.js';
import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';
import type {
  CounterRules,
  LimitDecision,
  LimitRequest,
  LimitUsage,
  QuotaChange,
  QuotaStatus,
  RateLimiter,
} from './rate-limiter.interface.js';
import {
  adjustQuotaCounts,
  checkQuota,
  checkWindow,
  decide,
  rollQuota,
  rollWindow,
  quotaStatus,
  windowStatus,
  type QuotaCounts,
  type WindowCounts,
} from './sliding-window.js';

/** Options of `new MemoryRateLimiter()`. */
export interface MemoryRateLimiterOptions {
  /** The clock, in epoch milliseconds. For tests. Default `Date.now`. */
  now?: () => number;
}

interface Entry<T> {
  counts: T;
  /** After this instant (ms) the counts no longer matter and may be dropped. */
  staleAt: number;
}

const OPTION_NAMES = optionNames<MemoryRateLimiterOptions>({ now: true });

/** Where one rate limit of `counterKey` is counted. */
const windowKey = (counterKey: string, rule: RateLimitRule) => `${counterKey}\0${rule.name}\0${rule.windowMs}`;
/** Where a quota of `counterKey` is counted; one that never refills is under interval 0. */
const quotaKeyOf = (counterKey: string, refillIntervalMs: number | undefined) => `${counterKey}\0${refillIntervalMs ?? 0}`;

/** Counters are swept once the map has grown this much since the last sweep. */
const FIRST_SWEEP_AT = 10_000;

/**
 * Counts in process memory: the default. Each `consume` runs without awaiting, so
 * concurrent requests in one process are counted exactly. Every instance of an app
 * counts alone, and counts are lost on restart (including quota credits that never
 * refill): a fleet, or a quota that bills, wants `RedisRateLimiter`.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, Entry<WindowCounts>>();
  private readonly quotas = new Map<string, Entry<QuotaCounts>>();
  private readonly now: () => number;
  private sweepAt = FIRST_SWEEP_AT;

  constructor(options: MemoryRateLimiterOptions = {}) {
    assertKnownOptions(options, OPTION_NAMES, { of: 'MemoryRateLimiter' });
    this.now = options.now ?? Date.now;
  }

  /** Number of counters held. */
  get size(): number {
    return this.windows.size + this.quotas.size;
  }

  async consume(counterKey: string, request: LimitRequest): Promise<LimitDecision> {
    const now = this.now();
    const windowKeys: string[] = [];
    const windowCounts: WindowCounts[] = [];
    const windows = request.rateLimits.map((rule) => {
      const key = windowKey(counterKey, rule);
      const counts = rollWindow(this.windows.get(key)?.counts, Math.floor(now / rule.windowMs));
      windowKeys.push(key);
      windowCounts.push(counts);
      return checkWindow(rule, counts, now);
    });
    const rule = request.quota;
    const quotaKey = rule && quotaKeyOf(counterKey, rule.refillIntervalMs);
    const quotaCounts = rule && rollQuota(this.quotas.get(quotaKey!)?.counts, rule, now);
    const quota = rule ? checkQuota(rule, quotaCounts!, request.cost, now) : null;

    const decision = decide(windows, quota);
    if (!decision.allowed) return decision;
    request.rateLimits.forEach((r, i) => {
      const counts = windowCounts[i]!;
      this.windows.set(windowKeys[i]!, {
        counts: { window: counts.window, current: counts.current + 1, previous: counts.previous },
        // Past the next window, these counts no longer weigh on any estimate.
        staleAt: (counts.window + 2) * r.windowMs,
      });
    });
    if (rule && request.cost > 0) {
      this.quotas.set(quotaKey!, {
        counts: { period: quotaCounts!.period, used: quotaCounts!.used + request.cost },
        staleAt: rule.refillIntervalMs ? (quotaCounts!.period + 1) * rule.refillIntervalMs : Number.POSITIVE_INFINITY,
      });
    }
    if (this.windows.size + this.quotas.size >= this.sweepAt) this.sweep(now);
    return decision;
  }

  async deleteCounters(counterKey: string, rules: CounterRules): Promise<void> {
    for (const rule of rules.rateLimits) this.windows.delete(windowKey(counterKey, rule));
    if (rules.quota) this.quotas.delete(quotaKeyOf(counterKey, rules.quota.refillIntervalMs));
    this.quotas.delete(quotaKeyOf(counterKey, undefined));
  }

  async peek(counterKey: string, rules: CounterRules): Promise<LimitUsage> {
    const now = this.now();
    const rateLimits = rules.rateLimits.map((rule) =>
      windowStatus(rule, rollWindow(this.windows.get(windowKey(counterKey, rule))?.counts, Math.floor(now / rule.windowMs)), now),
    );
    const rule = rules.quota;
    const quota = rule ? quotaStatus(rule, rollQuota(this.quotas.get(quotaKeyOf(counterKey, rule.refillIntervalMs))?.counts, rule, now), now) : null;
    return { rateLimits, quota };
  }

  async adjustQuota(counterKey: string, rule: QuotaRule, change: QuotaChange): Promise<QuotaStatus> {
    const now = this.now();
    const key = quotaKeyOf(counterKey, rule.refillIntervalMs);
    const counts = adjustQuotaCounts(rule, rollQuota(this.quotas.get(key)?.counts, rule, now), change);
    this.quotas.set(key, {
      counts,
      staleAt: rule.refillIntervalMs ? (counts.period + 1) * rule.refillIntervalMs : Number.POSITIVE_INFINITY,
    });
    return quotaStatus(rule, counts, now);
  }

  /** Forgets every counter. For tests. */
  clear(): void {
    this.windows.clear();
    this.quotas.clear();
  }

  /** Drops counters that no longer matter; amortised, so memory follows the keys in use. */
  private sweep(now: number): void {
    for (const map of [this.windows, this.quotas] as Array<Map<string, Entry<unknown>>>) {
      for (const [key, entry] of map) if (entry.staleAt <= now) map.delete(key);
    }
    this.sweepAt = Math.max(FIRST_SWEEP_AT, (this.windows.size + this.quotas.size) * 2);
  }
}
