import {
  Inject,
  Injectable,
  Logger,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { API_AUTH_OPTIONS, API_KEY_REQUEST_PROPERTY } from './api-auth.constants.js';
import type { ResolvedApiAuthOptions } from './api-auth.options.js';
import type { ApiKeyView } from './api-key.interface.js';
import { ApiKeyErrorCode } from './api-key.errors.js';
import { ApiKeyService } from './api-key.service.js';
import type { AuthenticationResult } from './verification/key-verifier.js';
import { getAuthCarrier } from './transport/request-context.js';
import { attachToExpressRequest } from './transport/express-request-property.js';
import type { ScopeRequirement } from './decorators/require-scopes.decorator.js';
import { RouteRulesCache, type RouteRules } from './decorators/route-rules.js';
import { emitDenial } from './events/denial-event.js';
import type { LimitDecision, QuotaStatus, RateLimitStatus } from './policy/rate-limiter.interface.js';
import { accessRefusal, chargeLimits, limitRefusal, limitsCalls, type AccessChecks } from './policy/access-decision.js';
import { clientIp } from './transport/client-ip.js';
import { IpAllowlist } from './policy/ip-allowlist.js';
import type { ApiKeyPolicy } from './policy/api-key-policy.js';
import { OutageNotice } from './internal/outage-notice.js';
import { redactedError } from './internal/safe-error-message.js';
import { refusalException } from './transport/refusal-exception.js';
import {
  extractKey as extractKeyFrom,
  MISSING,
  type ExtractedKey,
  type Headers,
} from './transport/key-extraction.js';
import { grantsEveryScope, grantsSomeScope } from './scopes/scope-patterns.js';
import { refusalBody, rejected, setHttpResponseHeader, type ApiKeyFailure } from './transport/refusal.js';
import { RefusalHeaders } from './transport/refusal-headers.js';

export type { ApiKeyFailure } from './transport/refusal.js';
export type { ExtractedKey } from './transport/key-extraction.js';

/** Requests already charged to a key's limits, so a guard registered twice counts a request once. */
const charged = new WeakSet<object>();

/**
 * Authenticates calls by API key and enforces `@RequireScopes()`. Register it per
 * controller or route (`@UseGuards(ApiKeyGuard)`) or globally (`APP_GUARD`, with
 * `@Public()` for open routes).
 *
 * Every step is a protected method, so a transport with its own shape overrides one
 * step instead of forking the guard: `getRequest` and `getHeaders` for where the key
 * comes from, `throwFailure` for how a refusal is reported.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  protected readonly logger = new Logger('ApiAuth');
  private readonly rules: RouteRulesCache;
  /** The guard's hooks for the checks it shares with `ApiKeyService.consume`. */
  private readonly checks: AccessChecks<Record<string, unknown>> = {
    allowlist: new IpAllowlist(),
    clientIp: (request) => this.getClientIp(request),
    hasScopes: (apiKey, requirement) => this.hasScopes(apiKey, requirement),
  };
  private readonly refusalHeaders: RefusalHeaders;
  private readonly backendOutage = new OutageNotice(this.logger, 'The API key backend', 'answering 503');
  private readonly limiterOutage = new OutageNotice(this.logger, 'The rate limiter', 'answering 503 to keys with limits');

  constructor(
    protected readonly reflector: Reflector,
    protected readonly apiKeys: ApiKeyService,
    @Inject(API_AUTH_OPTIONS) protected readonly options: ResolvedApiAuthOptions,
  ) {
    this.rules = new RouteRulesCache(reflector);
    this.refusalHeaders = new RefusalHeaders(options.realm);
  }

  /**
   * Synchronous when the key is answered from memory (an L1 or `MemoryBackend` hit,
   * or a malformed key): Nest takes a boolean without awaiting, so a cached key costs
   * no promise and no microtask hops. A promise when the backend must be asked.
   */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const rules = this.rules.get(context);
    if (rules.isPublic) return true;

    const request = this.getRequest(context);
    const extracted = request ? this.extractKey(request) : MISSING;
    if (extracted.kind === 'missing') {
      // `@OptionalApiKey()`: no key, no checks; a key that is sent is checked below.
      return rules.optional ? true : this.deny(context, { status: 401, code: 'missing_api_key' });
    }
    if (extracted.kind === 'malformed') return this.deny(context, { status: 401, code: 'invalid_api_key' });

    // A verdict that needs the backend is decided inside the lookup's own promise.
    const result = this.apiKeys.checkThen(extracted.value, (settled) => this.decide(context, request, rules, settled));
    return result instanceof Promise ? result : this.decide(context, request, rules, result);
  }

  /** Everything after the key's own verdict: IP, environment, scopes, limits, attach. */
  private decide(
    context: ExecutionContext,
    request: Record<string, unknown> | undefined,
    rules: RouteRules,
    result: AuthenticationResult,
  ): boolean | Promise<boolean> {
    if (!result.ok) {
      if (result.code === ApiKeyErrorCode.BackendUnavailable) {
        this.backendOutage.failed(result.error);
        return this.deny(context, { status: 503, code: result.code, error: result.error });
      }
      return this.deny(context, { status: 401, code: result.code });
    }
    this.backendOutage.answered();

    const apiKey = result.apiKey;
    // Keys without a policy on routes without requirements, the common case, skip the
    // shared checks (lib/policy/access-decision.ts, which `ApiKeyService.consume` runs too).
    const policy = apiKey.policy;
    if (policy !== null || rules.environments !== undefined || rules.requirement !== undefined) {
      const refusal = accessRefusal(apiKey, rules, this.checks, request ?? {});
      if (refusal !== null) return this.deny(context, refusal, apiKey);
    }
    if (limitsCalls(policy)) {
      return this.enforceLimits(context, request, apiKey, policy, rules.cost).then(() => {
        this.attach(request ?? {}, apiKey);
        return true;
      });
    }
    this.attach(request ?? {}, apiKey);
    return true;
  }

  /**
   * The caller's address for `policy.allowedIps`: `request.ip`, which Express and
   * Fastify derive from `X-Forwarded-For` only as far as the app trusts its proxies
   * (`trust proxy`, `trustProxy`). On a WebSocket, the connection's remote address;
   * no header is read there (see `clientIp`). `undefined` refuses a key with an
   * allowlist. Override for a transport that knows better, or to believe a proxy
   * in front of your WebSockets.
   */
  protected getClientIp(request: Record<string, unknown>): string | undefined {
    return clientIp(request);
  }

  /**
   * Counts the call against the key's rate limits and quota, once per request even
   * when the guard runs twice (global and per controller), and sets the `RateLimit-*`
   * and `X-Quota-*` headers. A limiter that cannot answer means 503: it must not let a key past
   * its limits, nor be taken for a bad key.
   */
  protected async enforceLimits(
    context: ExecutionContext,
    request: Record<string, unknown> | undefined,
    apiKey: ApiKeyView,
    policy: ApiKeyPolicy,
    cost: number,
  ): Promise<void> {
    // WebSocket clients carry many messages; only an HTTP request is a single call.
    const once = context.getType<string>() === 'http' && request !== undefined;
    if (once && charged.has(request)) return;
    let decision: LimitDecision;
    try {
      decision = await chargeLimits(this.options.rateLimiter, apiKey, policy, cost);
    } catch (error) {
      // The limiter's error names no key: counters are addressed by key id.
      this.limiterOutage.failed(error);
      return this.deny(context, { status: 503, code: 'backend_unavailable', error }, apiKey);
    }
    this.limiterOutage.answered();
    if (once) charged.add(request);
    if (decision.allowed) {
      if (decision.rateLimit) this.setRateLimitHeaders(context, decision.rateLimit);
      if (decision.quota) this.setQuotaHeaders(context, decision.quota);
      return;
    }
    if (decision.reason === 'rate_limited') this.setRateLimitHeaders(context, decision.rateLimit);
    else this.setQuotaHeaders(context, decision.quota);
    return this.deny(context, limitRefusal(decision)!, apiKey);
  }

  /** `RateLimit-Limit`, `-Remaining` and `-Reset` (seconds), as in the IETF RateLimit header fields draft. */
  protected setRateLimitHeaders(context: ExecutionContext, status: RateLimitStatus): void {
    this.setResponseHeader(context, 'RateLimit-Limit', String(status.limit));
    this.setResponseHeader(context, 'RateLimit-Remaining', String(status.remaining));
    this.setResponseHeader(context, 'RateLimit-Reset', String(Math.max(1, Math.ceil(status.resetMs / 1000))));
  }

  /**
   * `X-Quota-Remaining` (credits left after this call) and, for a quota that refills,
   * `X-Quota-Reset` (seconds until it does). Headers of their own: the `RateLimit-*`
   * fields describe one limit, the rate limit closest to running out.
   */
  protected setQuotaHeaders(context: ExecutionContext, status: QuotaStatus): void {
    this.setResponseHeader(context, 'X-Quota-Remaining', String(status.remaining));
    if (status.resetMs !== null) this.setResponseHeader(context, 'X-Quota-Reset', String(Math.max(1, Math.ceil(status.resetMs / 1000))));
  }

  /**
   * Emits `api-key.authentication-denied` (when anyone listens), then reports the
   * failure: as a rejected promise carrying {@link failureException}, unless a
   * subclass overrides {@link throwFailure}, which is then called and throws. Nest
   * treats both alike; a `throw` costs V8 a stack walk and a message object, which
   * was a third of the guard's work on a flood of garbage keys (see {@link rejected}
   * for the cost of a plain `Promise.reject`).
   */
  private deny(context: ExecutionContext, failure: ApiKeyFailure, apiKey?: ApiKeyView): Promise<never> {
    emitDenial(this.options.emitEvent, failure, apiKey);
    if (this.throwFailure !== ApiKeyGuard.prototype.throwFailure) return this.throwFailure(context, failure);
    return rejected(this.failureException(context, failure));
  }

  /** The object carrying headers and receiving the verified key: HTTP request, WebSocket client, GraphQL `req`. */
  protected getRequest(context: ExecutionContext): Record<string, unknown> | undefined {
    return getAuthCarrier(context);
  }

  /**
   * The headers to read the key from. For WebSockets this is the handshake's headers
   * (socket.io's `client.handshake.headers`, or `ws`'s upgrade request when the
   * gateway stores it as `client.upgradeReq` or `client.request`).
   */
  protected getHeaders(request: Record<string, unknown>): Headers | undefined {
    const carrier = request as {
      headers?: Headers;
      handshake?: { headers?: Headers };
      upgradeReq?: { headers?: Headers };
      request?: { headers?: Headers };
    };
    return carrier.headers ?? carrier.handshake?.headers ?? carrier.upgradeReq?.headers ?? carrier.request?.headers;
  }

  /** The query parameters, read only when the `queryParam` option is set. */
  protected getQuery(request: Record<string, unknown>): Record<string, unknown> | undefined {
    const carrier = request as { query?: Record<string, unknown>; handshake?: { query?: Record<string, unknown> } };
    return carrier.query ?? carrier.handshake?.query;
  }

  /**
   * Finds the key. The rule when several sources are present: they must agree. The
   * same key in `X-API-Key` and `Authorization: Bearer` is accepted; two different
   * values, or either header sent twice (even with the same value), are refused as
   * `invalid_api_key`, because picking one would let a proxy and the app disagree on
   * who is calling.
   */
  protected extractKey(request: Record<string, unknown>): ExtractedKey {
    const queryParam = this.options.queryParam;
    return extractKeyFrom(request, this.getHeaders(request) ?? {}, queryParam === false ? undefined : this.getQuery(request), this.options);
  }

  /** Whether the key satisfies the route's requirement; a held pattern (`reports:*`) grants the scopes under it. */
  protected hasScopes(apiKey: ApiKeyView, requirement: ScopeRequirement): boolean {
    return requirement.match === 'all' ? grantsEveryScope(apiKey.scopes, requirement.scopes) : grantsSomeScope(apiKey.scopes, requirement.scopes);
  }

  /** Makes the key available to `@CurrentApiKey()` and `@ApiKeyOwner()`. */
  protected attach(request: Record<string, unknown>, apiKey: ApiKeyView): void {
    if (!attachToExpressRequest(request, apiKey)) request[API_KEY_REQUEST_PROPERTY] = apiKey;
  }

  /**
   * Reports a refusal by throwing {@link failureException}. Override to throw a
   * `WsException` or a GraphQL error instead (or override `failureException` to return
   * one, which keeps refusals free of a `throw`).
   */
  protected throwFailure(context: ExecutionContext, failure: ApiKeyFailure): never {
    throw this.failureException(context, failure);
  }

  /**
   * The exception a refusal is reported with. Over HTTP it sets `WWW-Authenticate`
   * (401, 403 `insufficient_scope`) or `Retry-After` (429, 503) and returns an
   * `HttpException` whose body carries the stable `code`.
   */
  protected failureException(context: ExecutionContext, failure: ApiKeyFailure): unknown {
    const body = this.failureBody(failure);
    this.refusalHeaders.apply(failure, (name, value) => this.setResponseHeader(context, name, value));
    // A 503's cause is a redacted copy: Nest never sends it, but an app's filter may log
    // it. A subclass that needs the backend's error gets it as `failure.error`.
    const cause = failure.status === 503 && failure.error !== undefined ? redactedError(failure.error) : undefined;
    return refusalException(body, failure.status, cause);
  }

  /**
   * The error body of a refusal: `statusCode`, `error`, the stable `code`, `message`,
   * and for 403 the scopes the route requires. Transport-neutral, so a `throwFailure`
   * override (WebSocket, GraphQL) reports exactly what HTTP clients get.
   */
  protected failureBody(failure: ApiKeyFailure): Record<string, unknown> {
    return refusalBody(failure);
  }

  /** Sets a header on the HTTP response (Express or Fastify); a no-op for other transports. */
  protected setResponseHeader(context: ExecutionContext, name: string, value: string): void {
    setHttpResponseHeader(context, name, value);
  }
}
