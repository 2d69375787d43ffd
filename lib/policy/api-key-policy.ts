/** One named rate limit: at most `limit` requests in any `windowMs` (sliding window). */
export interface RateLimitRule {
  /** Identifies the limit in headers and counters, e.g. `"burst"` or `"hourly"`: 1-64 of `A-Z a-z 0-9 _ . : -`. */
  name: string;
  /** Requests allowed per window; a positive integer. */
  limit: number;
  /** Window length in milliseconds, e.g. `1000` or `60000`; from 1 ms to 366 days. */
  windowMs: number;
}

/** Usage credits: `limit` credits per refill interval (or in total), spent by each request's cost. */
export interface QuotaRule {
  /** Credits available per interval; a non-negative integer. `0` blocks every request that costs anything. */
  limit: number;
  /**
   * Credits return to `limit` at every multiple of this many milliseconds since the
   * Unix epoch (so `86_400_000` refills at 00:00 UTC). Omit it for credits that never
   * refill: `ApiKeyService.adjustQuota` tops a key up.
   */
  refillIntervalMs?: number;
}

/**
 * Per-key limits, stored as one JSON value on the record. Every part is optional, and
 * a key without a policy (`null`) costs the guard one null check.
 */
export interface ApiKeyPolicy {
  /** Rate limits, all enforced; a request must fit every one. At most 10, names unique. */
  rateLimits?: RateLimitRule[];
  /** Credits spent per request (cost set per route with `@ApiKeyCost()`, default 1). */
  quota?: QuotaRule;
  /**
   * Client addresses allowed to use the key: IPv4 or IPv6 addresses and CIDR ranges
   * (`"203.0.113.7"`, `"10.0.0.0/8"`, `"2001:db8::/32"`). Others get 403 `ip_not_allowed`.
   */
  allowedIps?: string[];
  /**
   * Id the rate-limit and quota counters are kept under. Default: the key's id. Keys
   * sharing a counter key share their limits and credits. `rotate` sets it on the new
   * key, so a replacement inherits its predecessor's spent credits instead of a fresh
   * budget.
   */
  counterKey?: string;
}
