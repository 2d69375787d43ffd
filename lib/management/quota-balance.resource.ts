import { HttpException } from '@nestjs/common';
import type { ApiKeyView } from '../api-key.interface.js';
import { readUsage, RateLimiterCapabilityError, type QuotaBalance } from '../policy/quota-balance.js';
import type { RateLimiter } from '../policy/rate-limiter.interface.js';
import type { ManagementErrorBody } from './management-exception.filter.js';

/** A quota's balance as the management routes show it (`quota` of a key read by id). */
export interface QuotaBalanceResource {
  limit: number;
  /** Credits left now; may exceed `limit` after a top-up, until the next refill. */
  remaining: number;
  /** When the balance returns to `limit` (ISO 8601); `null` for a quota that never refills. */
  refillsAt: string | null;
}

export function toQuotaBalanceResource(balance: QuotaBalance): QuotaBalanceResource {
  return { limit: balance.limit, remaining: balance.remaining, refillsAt: balance.refillsAt?.toISOString() ?? null };
}

/**
 * The key's balance for `GET /:id`: `null` without a quota, `undefined` (the field is
 * left out) when the limiter cannot say, because it has no `peek` or did not answer:
 * reading a key must not fail for its counters.
 */
export async function quotaBalanceOf(rateLimiter: RateLimiter, view: ApiKeyView): Promise<QuotaBalanceResource | null | undefined> {
  if (view.policy?.quota === undefined) return null;
  try {
    const usage = await readUsage(rateLimiter, view);
    return usage.quota === null ? null : toQuotaBalanceResource(usage.quota);
  } catch {
    return undefined;
  }
}

/** A custom limiter without `adjustQuota`: 501, not a 500, since nothing failed. */
export function notSupported(error: unknown): unknown {
  if (!(error instanceof RateLimiterCapabilityError)) return error;
  const body: ManagementErrorBody = {
    statusCode: 501,
    error: 'Not Implemented',
    code: 'not_supported',
    message: 'The configured rate limiter cannot change quota balances.',
  };
  return new HttpException(body, 501);
}
