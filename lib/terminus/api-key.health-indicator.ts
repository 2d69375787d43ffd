import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { randomUUID } from 'node:crypto';

type HealthCheckSession = ReturnType<HealthIndicatorService['check']>;
import { API_AUTH_OPTIONS } from '../api-auth.constants.js';
import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import type { ApiKeyBackend } from '../backends/backend.interface.js';
import { safeErrorMessage } from '../internal/safe-error-message.js';

/** Options of one check. */
export interface ApiKeyHealthCheckOptions {
  /** How long the check may take before it reports `down`, in milliseconds. Default `verifyTimeoutMs`, or 5000 when that is 0. */
  timeoutMs?: number;
}

/**
 * What a layer (a cache in front of the store, a rate limiter) offers to be checked
 * actively: resolve when it works, reject when it does not. `RedisCacheBackend` and
 * `RedisRateLimiter` have it; so may your own.
 */
interface Checkable {
  checkHealth(): Promise<unknown>;
}

function isCheckable(value: unknown): value is Checkable {
  return typeof (value as Partial<Checkable> | null)?.checkHealth === 'function';
}

/**
 * Terminus health indicators for API-key authentication: the key store, the caches
 * in front of it, and the rate limiter's store. Each reports on its own key, so a
 * readiness probe can require the store while a Redis cache outage (which the library
 * survives by reading the store) is only reported.
 *
 * ```ts
 * @Module({ imports: [TerminusModule], providers: [ApiKeyHealthIndicator], controllers: [HealthController] })
 * // in HealthController:
 * @Get('health') @HealthCheck() @Public()
 * check() {
 *   return this.health.check([() => this.apiKeys.checkBackend(), () => this.apiKeys.checkCache()]);
 * }
 * ```
 */
@Injectable()
export class ApiKeyHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    @Inject(API_AUTH_OPTIONS) private readonly options: ResolvedApiAuthOptions,
  ) {}

  /**
   * Up when the store of record answers a lookup: a read of an id that does not exist,
   * which every cache layer passes through to the store (PostgreSQL, Redis, yours).
   */
  checkBackend<const Key extends string = 'api-keys'>(
    key: Key = 'api-keys' as Key,
    options: ApiKeyHealthCheckOptions = {},
  ): Promise<HealthIndicatorResult<Key>> {
    const backend = this.options.backend;
    return this.attempt(key, options, async () => {
      await backend.getById(randomUUID());
      return { store: storeName(backend) };
    });
  }

  /**
   * Up when every cache layer in front of the store works: each layer with a
   * `checkHealth()` (a `RedisCacheBackend` writes and reads back a probe value) must
   * pass it. Up with `caches: 0` when the backend has no such layer.
   */
  checkCache<const Key extends string = 'api-keys-cache'>(
    key: Key = 'api-keys-cache' as Key,
    options: ApiKeyHealthCheckOptions = {},
  ): Promise<HealthIndicatorResult<Key>> {
    const layers = cacheLayers(this.options.backend);
    return this.attempt(key, options, async () => {
      for (const layer of layers) await layer.checkHealth();
      return { caches: layers.length };
    });
  }

  /**
   * Up when the rate limiter's store answers (a `RedisRateLimiter` PINGs its Redis).
   * An in-process limiter is always up.
   */
  checkRateLimiter<const Key extends string = 'api-keys-rate-limiter'>(
    key: Key = 'api-keys-rate-limiter' as Key,
    options: ApiKeyHealthCheckOptions = {},
  ): Promise<HealthIndicatorResult<Key>> {
    const limiter = this.options.rateLimiter;
    return this.attempt(key, options, async () => {
      if (isCheckable(limiter)) await limiter.checkHealth();
      return { limiter: limiter.constructor.name };
    });
  }

  private async attempt<Key extends string>(
    key: Key,
    options: ApiKeyHealthCheckOptions,
    check: () => Promise<Record<string, unknown>>,
  ): Promise<HealthIndicatorResult<Key>> {
    const timeout = options.timeoutMs ?? (this.options.verifyTimeoutMs || 5_000);
    // Terminus puts the error's message into the health response, which is often
    // public. A custom backend's or limiter's error may quote anything, so the message
    // goes through the same redaction as every log line.
    const redacted = () =>
      check().catch((error: unknown) => {
        throw new Error(safeErrorMessage(error));
      });
    const attempt = this.health.check(key).attempt(redacted) as ReturnType<HealthCheckSession['attempt']> & {
      withSuccessData?: (fn: (data: Record<string, unknown>) => Record<string, unknown>) => unknown;
    };
    // Terminus 12.2 deprecates adding the attempt's return value implicitly (a warning
    // per indicator) in favour of `withSuccessData`; 12.0 and 12.1 have no such method
    // and add the value themselves.
    attempt.withSuccessData?.((data) => data);
    return (await attempt.withTimeout(timeout)) as HealthIndicatorResult<Key>;
  }
}

/** The layers between the module's backend and the store of record, outermost first. */
function chain(backend: ApiKeyBackend): ApiKeyBackend[] {
  const layers: ApiKeyBackend[] = [];
  let layer: unknown = backend;
  // Cache layers name what they wrap `primary`; the bound guards against a cycle.
  while (layer && layers.length < 10) {
    layers.push(layer as ApiKeyBackend);
    layer = (layer as { primary?: unknown }).primary;
  }
  return layers;
}

function cacheLayers(backend: ApiKeyBackend): Checkable[] {
  // Every layer but the last, which is the store itself.
  return chain(backend)
    .slice(0, -1)
    .filter((layer): layer is ApiKeyBackend & Checkable => isCheckable(layer));
}

function storeName(backend: ApiKeyBackend): string {
  return chain(backend).at(-1)!.constructor.name;
}
