import type { ApiKeyView } from '../api-key.interface.js';
import type { ScopeRequirement } from '../decorators/require-scopes.decorator.js';
import type { ApiKeyFailure } from '../transport/refusal.js';
import type { ApiKeyPolicy } from './api-key-policy.js';
import type { IpAllowlist } from './ip-allowlist.js';
import type { LimitDecision, RateLimiter } from './rate-limiter.interface.js';

/**
 * The decision after a key's own verdict (valid, unexpired, unrevoked), shared by
 * `ApiKeyGuard` and `ApiKeyService.consume` so that a queue worker and an HTTP route
 * refuse the same key for the same reason: address, environment, scopes, then the
 * rate limits and quota. The guard adds what only HTTP has (headers, charging a
 * request once when the guard runs twice); `consume` adds nothing.
 */

/** What a call asks of a key beyond being valid: a route's decorators, or `consume`'s options. */
export interface AccessDemand {
  /** The environments the key must belong to; `undefined` for any. */
  readonly environments: readonly string[] | undefined;
  /** The scopes the key must hold; `undefined` for none. */
  readonly requirement: ScopeRequirement | undefined;
}

/** How a caller's address and scopes are read, so the guard keeps its overridable hooks. */
export interface AccessChecks<Carrier> {
  readonly allowlist: IpAllowlist;
  /** The caller's address for `policy.allowedIps`; read only for keys with an allowlist. */
  clientIp(carrier: Carrier): string | undefined;
  hasScopes(apiKey: ApiKeyView, requirement: ScopeRequirement): boolean;
}

/** A refusal decided before any limit is counted. */
export type AccessRefusal = Extract<ApiKeyFailure, { status: 403 }>;
/** A refusal of the limiter. */
export type LimitRefusal = Extract<ApiKeyFailure, { status: 429 }>;

const IP_NOT_ALLOWED: AccessRefusal = Object.freeze({ status: 403, code: 'ip_not_allowed' });

/**
 * The first of the address, environment and scope checks that refuses `apiKey`, or
 * `null`. The address and environment come before scopes: a caller refused for where
 * it calls from learns nothing about what the call needs.
 */
export function accessRefusal<Carrier>(
  apiKey: ApiKeyView,
  demand: AccessDemand,
  checks: AccessChecks<Carrier>,
  carrier: Carrier,
): AccessRefusal | null {
  const policy = apiKey.policy ?? null;
  if (policy !== null && policy.allowedIps !== undefined && !checks.allowlist.allows(checks.clientIp(carrier), policy.allowedIps)) {
    return IP_NOT_ALLOWED;
  }
  const environments = demand.environments;
  if (environments !== undefined && (apiKey.environment == null || !environments.includes(apiKey.environment))) {
    return { status: 403, code: 'environment_not_allowed', environments };
  }
  const requirement = demand.requirement;
  if (requirement !== undefined && !checks.hasScopes(apiKey, requirement)) {
    return { status: 403, code: 'insufficient_scope', requirement };
  }
  return null;
}

/** Whether the policy limits calls, so the rate limiter must be asked. */
export function limitsCalls(policy: ApiKeyPolicy | null | undefined): policy is ApiKeyPolicy {
  return policy != null && (policy.rateLimits !== undefined || policy.quota !== undefined);
}

/**
 * Counts one call of `cost` credits against the key's rate limits and quota, under
 * its counter key. Rejects when the limiter cannot answer: that is a 503, never a
 * pass and never a bad key.
 */
export function chargeLimits(rateLimiter: RateLimiter, apiKey: ApiKeyView, policy: ApiKeyPolicy, cost: number): Promise<LimitDecision> {
  return rateLimiter.consume(policy.counterKey ?? apiKey.id, { rateLimits: policy.rateLimits ?? [], quota: policy.quota, cost });
}

/** The refusal a limiter's decision means, or `null` when the call was allowed (and counted). */
export function limitRefusal(decision: LimitDecision): LimitRefusal | null {
  if (decision.allowed) return null;
  if (decision.reason === 'rate_limited') {
    return { status: 429, code: 'rate_limited', rateLimit: decision.rateLimit, retryAfterMs: decision.retryAfterMs };
  }
  return { status: 429, code: 'quota_exhausted', retryAfterMs: decision.retryAfterMs };
}
