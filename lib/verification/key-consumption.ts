import type { ApiKeyView } from '../api-key.interface.js';
import { ApiKeyValidationError } from '../api-key.errors.js';
import type { ApiKeyEventSink } from '../events/api-key-event.sink.js';
import { emitDenial } from '../events/denial-event.js';
import { accessRefusal, chargeLimits, limitRefusal, limitsCalls, type AccessChecks, type AccessDemand } from '../policy/access-decision.js';
import { isEnvironmentName } from '../policy/environment.js';
import { IpAllowlist } from '../policy/ip-allowlist.js';
import type { QuotaStatus, RateLimiter, RateLimitStatus } from '../policy/rate-limiter.interface.js';
import { grantsEveryScope } from '../scopes/scope-patterns.js';
import type { ApiKeyFailure } from '../transport/refusal.js';
import type { AuthenticationResult } from './key-verifier.js';

/** Options of `ApiKeyService.consume`. */
export interface ConsumeOptions {
  /** Credits the call spends from the key's quota, as `@ApiKeyCost()` on a route. Default 1; `0` spends none. */
  cost?: number;
  /**
   * The caller's address, checked against the key's `policy.allowedIps`. A key with an
   * allowlist is refused (`ip_not_allowed`) when it is missing, as the guard refuses a
   * request whose address it cannot tell.
   */
  ip?: string;
  /** The environment(s) the key must belong to, as `@RequireEnvironment()`. Default: any. */
  environment?: string | readonly string[];
  /** Scopes the key must all hold, as `@RequireScopes()` (patterns such as `reports:*` grant). Default: none. */
  scopes?: readonly string[];
}

/** The outcome of `ApiKeyService.consume`. */
export type ConsumeOutcome =
  | {
      ok: true;
      apiKey: ApiKeyView;
      /** The rate limit closest to running out after this call, or `null` when the key has none. */
      rateLimit: RateLimitStatus | null;
      /** The quota after this call's cost, or `null` when the key has none. */
      quota: QuotaStatus | null;
    }
  | {
      ok: false;
      /** The guard's code for the same refusal, e.g. `invalid_api_key`, `ip_not_allowed`, `quota_exhausted`. */
      code: ApiKeyFailure['code'];
      /** The HTTP status the guard would answer: 401, 403, 429 or 503. */
      status: ApiKeyFailure['status'];
      /** The key, when it was valid and then refused for its policy or the call's demands; otherwise `null`. */
      apiKey: ApiKeyView | null;
      /** For 429: when a retry can succeed (`null`: a quota that never refills). `null` otherwise. */
      retryAfterMs: number | null;
      /** For 503: what the backend or the limiter failed with. */
      error?: unknown;
    };

/** The address `consume` was given, as the carrier the shared checks read it from. */
interface ConsumeCarrier {
  ip: string | undefined;
}

const SERVICE_CHECKS: AccessChecks<ConsumeCarrier> = {
  allowlist: new IpAllowlist(),
  clientIp: (carrier) => carrier.ip,
  hasScopes: (apiKey, requirement) => grantsEveryScope(apiKey.scopes, requirement.scopes),
};

function validated(options: ConsumeOptions): { cost: number; carrier: ConsumeCarrier; demand: AccessDemand } {
  if (options === null || typeof options !== 'object') throw new ApiKeyValidationError('options', 'must be an object');
  const cost = options.cost ?? 1;
  if (!Number.isSafeInteger(cost) || cost < 0 || cost > 1_000_000_000) {
    throw new ApiKeyValidationError('cost', 'must be an integer from 0 to 1000000000');
  }
  if (options.ip !== undefined && typeof options.ip !== 'string') throw new ApiKeyValidationError('ip', 'must be a string');
  const environments = options.environment === undefined ? undefined : typeof options.environment === 'string' ? [options.environment] : options.environment;
  if (environments !== undefined && (!Array.isArray(environments) || environments.length === 0 || !environments.every(isEnvironmentName))) {
    throw new ApiKeyValidationError('environment', 'must be an environment name or a non-empty array of them');
  }
  const scopes = options.scopes;
  if (scopes !== undefined && (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => typeof s === 'string' && s.length > 0))) {
    throw new ApiKeyValidationError('scopes', 'must be a non-empty array of scopes');
  }
  return {
    cost,
    carrier: { ip: options.ip },
    demand: { environments, requirement: scopes === undefined ? undefined : { scopes, match: 'all' } },
  };
}

function refused(failure: ApiKeyFailure, apiKey: ApiKeyView | null, sink: ApiKeyEventSink | null): ConsumeOutcome {
  emitDenial(sink, failure, apiKey);
  const outcome: ConsumeOutcome = {
    ok: false,
    code: failure.code,
    status: failure.status,
    apiKey,
    retryAfterMs: failure.status === 429 ? failure.retryAfterMs : null,
  };
  if (failure.status === 503 && failure.error !== undefined) outcome.error = failure.error;
  return outcome;
}

/**
 * The guard's decision for a call outside HTTP: `check` is the key's own verdict
 * (`KeyVerifier.check`), then the shared address, environment and scope checks and
 * the limits. Throws only for invalid `options`; every refusal is an outcome.
 */
export async function consumeKey(
  key: unknown,
  options: ConsumeOptions,
  check: (key: string) => AuthenticationResult | Promise<AuthenticationResult>,
  rateLimiter: RateLimiter,
  sink: ApiKeyEventSink | null,
): Promise<ConsumeOutcome> {
  const { cost, carrier, demand } = validated(options);
  if (typeof key !== 'string' || key.trim().length === 0) return refused({ status: 401, code: 'missing_api_key' }, null, sink);
  const result = await check(key);
  if (!result.ok) {
    return result.code === 'backend_unavailable'
      ? refused({ status: 503, code: result.code, error: result.error }, null, sink)
      : refused({ status: 401, code: result.code }, null, sink);
  }
  const apiKey = result.apiKey;
  const refusal = accessRefusal(apiKey, demand, SERVICE_CHECKS, carrier);
  if (refusal !== null) return refused(refusal, apiKey, sink);
  const policy = apiKey.policy ?? null;
  if (!limitsCalls(policy)) return { ok: true, apiKey, rateLimit: null, quota: null };
  let decision;
  try {
    decision = await chargeLimits(rateLimiter, apiKey, policy, cost);
  } catch (error) {
    return refused({ status: 503, code: 'backend_unavailable', error }, apiKey, sink);
  }
  if (!decision.allowed) return refused(limitRefusal(decision)!, apiKey, sink);
  return { ok: true, apiKey, rateLimit: decision.rateLimit, quota: decision.quota };
}
