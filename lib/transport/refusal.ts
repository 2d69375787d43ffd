import type { ExecutionContext } from '@nestjs/common';
import type { ApiKeyErrorCode, AuthenticationFailureCode } from '../api-key.errors.js';
import type { ScopeRequirement } from '../decorators/require-scopes.decorator.js';
import type { RateLimitStatus } from '../policy/rate-limiter.interface.js';

/** Why the guard refused a call. */
export type ApiKeyFailure =
  | { status: 401; code: AuthenticationFailureCode }
  | { status: 403; code: typeof ApiKeyErrorCode.InsufficientScope; requirement: ScopeRequirement }
  | { status: 403; code: typeof ApiKeyErrorCode.IpNotAllowed }
  | { status: 403; code: typeof ApiKeyErrorCode.EnvironmentNotAllowed; environments: readonly string[] }
  | { status: 429; code: typeof ApiKeyErrorCode.RateLimited; rateLimit: RateLimitStatus; retryAfterMs: number }
  | { status: 429; code: typeof ApiKeyErrorCode.QuotaExhausted; retryAfterMs: number | null }
  | { status: 503; code: typeof ApiKeyErrorCode.BackendUnavailable; error?: unknown };

const MESSAGES: Record<ApiKeyFailure['code'], string> = {
  missing_api_key: 'An API key is required.',
  invalid_api_key: 'The API key is not valid.',
  expired_api_key: 'The API key has expired.',
  revoked_api_key: 'The API key has been revoked.',
  disabled_api_key: 'The API key is disabled.',
  insufficient_scope: 'The API key lacks a scope this operation requires.',
  backend_unavailable: 'API key verification is temporarily unavailable. Retry later.',
  ip_not_allowed: 'The API key may not be used from this address.',
  environment_not_allowed: "This operation is not available to the API key's environment.",
  rate_limited: 'The API key has exceeded its rate limit. Retry later.',
  quota_exhausted: 'The API key has no usage credits left.',
};

const ERROR_NAMES: Record<ApiKeyFailure['status'], string> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/**
 * The error body of a refusal: `statusCode`, `error`, the stable `code`, `message`,
 * and for 403 the scopes the route requires. Transport-neutral, so a `throwFailure`
 * override (WebSocket, GraphQL) reports exactly what HTTP clients get.
 */
export function refusalBody(failure: ApiKeyFailure): Record<string, unknown> {
  const body: Record<string, unknown> = {
    statusCode: failure.status,
    error: ERROR_NAMES[failure.status],
    code: failure.code,
    message: MESSAGES[failure.code],
  };
  if (failure.code === 'insufficient_scope') {
    // Name what the route needs, never what the key holds.
    body.requiredScopes = [...failure.requirement.scopes];
    body.scopeMatch = failure.requirement.match;
  } else if (failure.code === 'environment_not_allowed') {
    body.requiredEnvironments = [...failure.environments];
  } else if (failure.status === 429 && failure.retryAfterMs !== null) {
    body.retryAfterSeconds = Math.max(1, Math.ceil(failure.retryAfterMs / 1000));
  }
  return body;
}

/** Sets a header on the HTTP response (Express or Fastify); a no-op for other transports. */
export function setHttpResponseHeader(context: ExecutionContext, name: string, value: string): void {
  if (context.getType<string>() !== 'http') return;
  // HTTP arguments are `[request, response, next]` (see getAuthCarrier).
  const response = context.getArgByIndex<{
    setHeader?: (n: string, v: string) => void;
    header?: (n: string, v: string) => void;
  } | undefined>(1);
  if (typeof response?.header === 'function') response.header(name, value);
  else if (typeof response?.setHeader === 'function') response.setHeader(name, value);
}

/**
 * A promise rejected with `reason` that Node does not track as possibly unhandled: a
 * no-op handler is attached before the rejection. Nest always awaits the guard's
 * promise, so it still sees it (docs/internals.md#refusals-without-throw-or-promisereject).
 */
export function rejected(reason: unknown): Promise<never> {
  let reject!: (reason: unknown) => void;
  const promise = new Promise<never>((_, settle) => {
    reject = settle;
  });
  promise.then(undefined, ignoreRejection);
  reject(reason);
  return promise;
}

function ignoreRejection(): void {}
