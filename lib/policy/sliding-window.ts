import type { QuotaRule, RateLimitRule } from './api-key-policy.js';
import { MAX_QUOTA_BALANCE, type LimitDecision, type QuotaChange, type QuotaStatus, type RateLimitStatus } from './rate-limiter.interface.js';

/**
 * The sliding window counter, as pure functions, so the in-process limiter and the
 * tests share one definition (the Redis script is a line-by-line port).
 *
 * The window `[now - W, now]` is estimated from two fixed windows: all of the current
 * one, plus the previous one weighted by the share of it still inside the sliding
 * window. A request fits when `estimate + 1 <= limit`.
 */

/** Counts of one rate limit, as stored. */
export interface WindowCounts {
  /** Index of the fixed window the counts belong to: `floor(time / windowMs)`. */
  window: number;
  current: number;
  previous: number;
}

/** Counts of one quota, as stored. */
export interface QuotaCounts {
  /** `floor(time / refillIntervalMs)`, or 0 when the quota never refills. */
  period: number;
  used: number;
}

/** The counts as they stand at window `index`, given what was stored (if anything). */
export function rollWindow(stored: WindowCounts | undefined, index: number): WindowCounts {
  if (stored === undefined || stored.window < index - 1 || stored.window > index) {
    return { window: index, current: 0, previous: 0 };
  }
  if (stored.window === index - 1) return { window: index, current: 0, previous: stored.current };
  return stored;
}

/** Where one rate limit stands at `now` with `counts` (already rolled to `now`'s window). */
export function checkWindow(
  rule: RateLimitRule,
  counts: WindowCounts,
  now: number,
): { fits: boolean; status: RateLimitStatus; retryAfterMs: number } {
  const w = rule.windowMs;
  const elapsed = now - counts.window * w;
  const estimate = (counts.previous * (w - elapsed)) / w + counts.current;
  const fits = estimate + 1 <= rule.limit;
  const after = fits ? estimate + 1 : estimate;
  const status: RateLimitStatus = {
    name: rule.name,
    limit: rule.limit,
    remaining: Math.max(0, Math.floor(rule.limit - after)),
    resetMs: w - elapsed,
  };
  return { fits, status, retryAfterMs: fits ? 0 : retryAfter(rule, counts, elapsed) };
}

/** Where one rate limit stands at `now`, before any further request: for reading, not counting. */
export function windowStatus(rule: RateLimitRule, counts: WindowCounts, now: number): RateLimitStatus {
  const w = rule.windowMs;
  const elapsed = now - counts.window * w;
  const estimate = (counts.previous * (w - elapsed)) / w + counts.current;
  return { name: rule.name, limit: rule.limit, remaining: Math.max(0, Math.floor(rule.limit - estimate)), resetMs: w - elapsed };
}

/** Milliseconds until one more request fits, if no other request comes in meanwhile. */
function retryAfter(rule: RateLimitRule, counts: WindowCounts, elapsed: number): number {
  const { limit, windowMs: w } = rule;
  let wait: number;
  if (counts.current + 1 <= limit) {
    // Fits later in this window, as the previous window's weight decays.
    wait = Math.ceil(w - ((limit - 1 - counts.current) * w) / counts.previous) - elapsed;
  } else {
    // Only in the next window, once the current count (then "previous") has decayed enough.
    wait = w - elapsed + Math.max(0, Math.ceil(w - ((limit - 1) * w) / counts.current));
  }
  return Math.max(1, wait);
}

/** The quota's counts at `now`, given what was stored. */
export function rollQuota(stored: QuotaCounts | undefined, rule: QuotaRule, now: number): QuotaCounts {
  const period = rule.refillIntervalMs ? Math.floor(now / rule.refillIntervalMs) : 0;
  return stored !== undefined && stored.period === period ? stored : { period, used: 0 };
}

/** Where a quota stands at `now`, and whether `cost` more credits fit. */
export function checkQuota(rule: QuotaRule, counts: QuotaCounts, cost: number, now: number): { fits: boolean; status: QuotaStatus } {
  const fits = counts.used + cost <= rule.limit;
  const used = fits ? counts.used + cost : counts.used;
  return {
    fits,
    status: {
      limit: rule.limit,
      remaining: Math.max(0, rule.limit - used),
      resetMs: rule.refillIntervalMs ? (counts.period + 1) * rule.refillIntervalMs - now : null,
    },
  };
}

/**
 * The quota's counts after `change`: the balance (`limit - used`) becomes `n`, or
 * moves by `n`, kept within 0 and {@link MAX_QUOTA_BALANCE}. `used` may go below 0:
 * that is a balance above `limit`, until the next refill starts the period afresh.
 */
export function adjustQuotaCounts(rule: QuotaRule, counts: QuotaCounts, change: QuotaChange): QuotaCounts {
  const balance = 'set' in change ? change.set : rule.limit - counts.used + change.add;
  const kept = Math.min(MAX_QUOTA_BALANCE, Math.max(0, balance));
  return { period: counts.period, used: rule.limit - kept };
}

/** Where a quota stands at `now`, before any further call. */
export function quotaStatus(rule: QuotaRule, counts: QuotaCounts, now: number): QuotaStatus {
  return checkQuota(rule, counts, 0, now).status;
}

/**
 * Picks what the caller is told: a quota refusal first (retrying soon would not
 * help), then the rate limit that keeps the caller waiting longest; when allowed, the
 * rate limit closest to running out.
 */
export function decide(
  windows: Array<{ fits: boolean; status: RateLimitStatus; retryAfterMs: number }>,
  quota: { fits: boolean; status: QuotaStatus } | null,
): LimitDecision {
  if (quota !== null && !quota.fits) {
    return { allowed: false, reason: 'quota_exhausted', quota: quota.status, retryAfterMs: quota.status.resetMs };
  }
  let refusal: (typeof windows)[number] | undefined;
  let tightest: RateLimitStatus | null = null;
  for (const w of windows) {
    if (!w.fits && (refusal === undefined || w.retryAfterMs > refusal.retryAfterMs)) refusal = w;
    if (tightest === null || w.status.remaining < tightest.remaining) tightest = w.status;
  }
  if (refusal !== undefined) {
    return { allowed: false, reason: 'rate_limited', rateLimit: refusal.status, retryAfterMs: refusal.retryAfterMs };
  }
  return { allowed: true, rateLimit: tightest, quota: quota?.status ?? null };
}
