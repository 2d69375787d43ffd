import type { QuotaRule, RateLimitRule } from './api-key-policy.js';

/** What one request asks of the limiter. */
export interface LimitRequest {
  /** Every rate limit of the key; each counts the request once. */
  rateLimits: readonly RateLimitRule[];
  /** The key's quota, if it has one. */
  quota: QuotaRule | undefined;
  /** Credits the request spends from the quota (`@ApiKeyCost()`, default 1). `0` spends none. */
  cost: number;
}

/** The rules whose counters {@link RateLimiter.deleteCounters} removes: a policy's limits. */
export type CounterRules = Pick<LimitRequest, 'rateLimits' | 'quota'>;

/** Where a rate limit stands after a request, for the `RateLimit-*` headers. */
export interface RateLimitStatus {
  name: string;
  limit: number;
  /** Requests still allowed in the current window, never negative. */
  remaining: number;
  /** Milliseconds until the current window ends. */
  resetMs: number;
}

/** Where a quota stands after a request. */
export interface QuotaStatus {
  limit: number;
  /** Credits left, never negative. */
  remaining: number;
  /** Milliseconds until the next refill; `null` when the quota never refills. */
  resetMs: number | null;
}

/** Where a key's counters stand, read without counting a call (`RateLimiter.peek`). */
export interface LimitUsage {
  /** Every rate limit asked about, in the order given: requests left in the current window. */
  rateLimits: RateLimitStatus[];
  /** The quota's balance, or `null` when none was asked about. */
  quota: QuotaStatus | null;
}

/**
 * A change to a quota's balance: `set` makes it exactly `n` credits, `add` adds `n`
 * (a negative `n` takes credits away). The balance stays within 0 and
 * {@link MAX_QUOTA_BALANCE}, and may exceed the quota's `limit` until the next refill.
 */
export type QuotaChange = { set: number } | { add: number };

/** The largest balance a quota can hold after `adjustQuota` (well inside a double's exact integers). */
export const MAX_QUOTA_BALANCE = 1_000_000_000_000;

/**
 * The limiter's verdict. All or nothing: an allowed request has been counted by every
 * rate limit and charged to the quota; a refused one changed no counter, so retries
 * against a full limit never dig the hole deeper.
 */
export type LimitDecision =
  | {
      allowed: true;
      /** The rate limit closest to running out, or `null` when the key has none. */
      rateLimit: RateLimitStatus | null;
      quota: QuotaStatus | null;
    }
  | {
      allowed: false;
      reason: 'rate_limited';
      /** The limit that refused the request. */
      rateLimit: RateLimitStatus;
      /** When a request would next fit, in milliseconds. */
      retryAfterMs: number;
    }
  | {
      allowed: false;
      reason: 'quota_exhausted';
      quota: QuotaStatus;
      /** Until the refill, or `null` when the quota never refills. */
      retryAfterMs: number | null;
    };

/**
 * Keeps the counters behind per-key rate limits and quotas. `MemoryRateLimiter` (the
 * default) counts per process; `RedisRateLimiter` (from `nestjs-api-auth/redis`)
 * counts for a whole fleet. Implement it for another store: `consume` must check and
 * count every rule of a request as one atomic step.
 *
 * Rate limits use a sliding window counter: the current fixed window's count plus
 * the previous window's, weighted by how much of it still overlaps the sliding
 * window. Two integers per limit, exact for a burst inside one window, and without
 * the double burst a plain fixed window allows across its boundary.
 */
export interface RateLimiter {
  /**
   * Checks the request against every rule of `counterKey` and, if all allow it,
   * counts it. Rejects (the guard answers 503) when the store cannot answer.
   */
  consume(counterKey: string, request: LimitRequest): Promise<LimitDecision>;

  /**
   * Removes the counters `rules` keep under `counterKey`, and the counter of a quota
   * that never refills whatever its limit (the one counter that would otherwise stay
   * forever). Counters of other rules under the same key expire with their windows.
   * Unknown counters are a no-op. Takes the rules, not just the key, so a store can
   * delete exact keys (no scan).
   *
   * The library never calls it, and `ApiKeyService.delete` leaves counters in place:
   * a key can name `counterKey` in a record written after any check that none does (an
   * issue or rotation that read its source before the delete, on any instance), and
   * it would then start with a fresh budget. Only the application can know that no
   * key will count against `counterKey` again (say, once an account is closed and its
   * keys are gone); call it then.
   */
  deleteCounters?(counterKey: string, rules: CounterRules): Promise<void>;

  /**
   * Where the counters of `rules` under `counterKey` stand now, without counting
   * anything: requests left in each rate limit's window, and the quota's balance and
   * time to its refill. Optional; `ApiKeyService.getUsage` and the management routes'
   * `quota` field need it. Rejects when the store cannot answer.
   */
  peek?(counterKey: string, rules: CounterRules): Promise<LimitUsage>;

  /**
   * Sets or adds to the balance of `quota` under `counterKey` as one atomic step (no
   * call spending credits in between is lost), and resolves to the balance after it.
   * The change holds for the current refill period: at the next refill the balance
   * returns to `limit`. Optional; `ApiKeyService.adjustQuota` needs it.
   */
  adjustQuota?(counterKey: string, quota: QuotaRule, change: QuotaChange): Promise<QuotaStatus>;
}
