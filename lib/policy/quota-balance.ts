import type { ApiKey, ApiKeyView } from '../api-key.interface.js';
import { ApiKeyValidationError } from '../api-key.errors.js';
import { counterKeyOf } from './counter-key.js';
import { MAX_QUOTA_BALANCE, type QuotaChange, type RateLimiter, type RateLimitStatus } from './rate-limiter.interface.js';

/**
 * A key's quota balance and rate-limit windows as its limiter holds them: what
 * `ApiKeyService.getUsage` and `adjustQuota` return, and what the management routes
 * show as `quota`. The counters live in the limiter, not on the record, under the
 * key's counter key: keys that share counters (a rotated key and its replacement, the
 * keys a self-service key minted) share the balance too.
 */

/** A quota's balance at one moment. */
export interface QuotaBalance {
  /** Credits per refill period (or in total), as in the policy. */
  limit: number;
  /** Credits left now; may exceed `limit` after a top-up, until the next refill. */
  remaining: number;
  /** When the balance returns to `limit`; `null` for a quota that never refills. */
  refillsAt: Date | null;
}

/** What `ApiKeyService.getUsage` resolves to. */
export interface ApiKeyUsage {
  apiKeyId: string;
  /** The quota's balance; `null` when the key has no quota. */
  quota: QuotaBalance | null;
  /** Each rate limit of the key, in policy order: requests left in the current window and ms to its end. */
  rateLimits: RateLimitStatus[];
  /** When the counters were read. */
  at: Date;
}

/** Thrown when the configured `rateLimiter` lacks a method an operation needs (a custom one). */
export class RateLimiterCapabilityError extends Error {
  constructor(readonly method: 'peek' | 'adjustQuota') {
    super(`nestjs-api-auth: the configured rateLimiter has no ${method}() method; MemoryRateLimiter and RedisRateLimiter have it.`);
    this.name = 'RateLimiterCapabilityError';
  }
}

/** Checks `{ set: n }` or `{ add: n }`: exactly one, an integer within the balance's bounds. */
export function validateQuotaChange(change: unknown): QuotaChange {
  if (change === null || typeof change !== 'object' || Array.isArray(change)) {
    throw new ApiKeyValidationError('change', 'must be { set: n } or { add: n }');
  }
  const fields = Object.keys(change);
  if (fields.length !== 1 || (fields[0] !== 'set' && fields[0] !== 'add')) {
    throw new ApiKeyValidationError('change', 'must have exactly one field, "set" or "add"');
  }
  const field = fields[0];
  const n = (change as Record<string, unknown>)[field];
  const min = field === 'set' ? 0 : -MAX_QUOTA_BALANCE;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > MAX_QUOTA_BALANCE) {
    throw new ApiKeyValidationError(field, `must be an integer from ${min} to ${MAX_QUOTA_BALANCE}`);
  }
  return field === 'set' ? { set: n } : { add: n };
}

/** Reads the key's counters without counting a call. */
export async function readUsage(rateLimiter: RateLimiter, record: Pick<ApiKey, 'id' | 'policy'>): Promise<ApiKeyUsage> {
  const policy = record.policy ?? null;
  const rateLimits = policy?.rateLimits ?? [];
  const quota = policy?.quota;
  const at = new Date();
  if (rateLimits.length === 0 && quota === undefined) return { apiKeyId: record.id, quota: null, rateLimits: [], at };
  if (typeof rateLimiter.peek !== 'function') throw new RateLimiterCapabilityError('peek');
  const usage = await rateLimiter.peek(counterKeyOf(record), { rateLimits, quota });
  return {
    apiKeyId: record.id,
    quota: usage.quota === null ? null : balanceOf(usage.quota.limit, usage.quota.remaining, usage.quota.resetMs, at),
    rateLimits: usage.rateLimits,
    at,
  };
}

/** Sets or tops up the key's quota balance; a key without a quota is refused (`ApiKeyValidationError`). */
export async function changeQuota(rateLimiter: RateLimiter, record: ApiKeyView, change: QuotaChange): Promise<QuotaBalance> {
  const quota = record.policy?.quota;
  if (quota === undefined) throw new ApiKeyValidationError('policy.quota', 'is not set on this key, so it has no balance to change');
  if (typeof rateLimiter.adjustQuota !== 'function') throw new RateLimiterCapabilityError('adjustQuota');
  const at = new Date();
  const status = await rateLimiter.adjustQuota(counterKeyOf(record), quota, change);
  return balanceOf(status.limit, status.remaining, status.resetMs, at);
}

function balanceOf(limit: number, remaining: number, resetMs: number | null, at: Date): QuotaBalance {
  return { limit, remaining, refillsAt: resetMs === null ? null : new Date(at.getTime() + resetMs) };
}
