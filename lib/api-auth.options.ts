import type { ApiKeyBackend } from './backends/backend.interface.js';
import { MemoryBackend } from './backends/memory.backend.js';
import { environmentPrefix, isEnvironmentName } from './policy/environment.js';
import { createEventSink, type ApiKeyEventEmitter, type ApiKeyEventListener, type ApiKeyEventSink } from './events/api-key-event.sink.js';
import { assertLegacyPrefixes } from './keys/legacy-key-format.js';
import { assertValidPrefix } from './keys/key-format.js';
import { NoopUsageWriteCoordinator, type UsageWriteCoordinator } from './usage/usage-coordinator.js';
import { MemoryRateLimiter } from './policy/memory.rate-limiter.js';
import type { RateLimiter } from './policy/rate-limiter.interface.js';
import type { ApiAuthRoutesOptions } from './management/api-auth-routes.options.js';
import { assertKnownOptions, optionNames } from './options/assert-known-options.js';
import { resolveKeyLifetime, type KeyLifetimeOptions, type ResolvedKeyLifetime } from './management/key-lifetime.js';
import { previousPepperHashers } from './keys/previous-peppers.js';
import type { ApiKeyPolicy } from './policy/api-key-policy.js';
import { resolvePurgeOptions, type ApiAuthPurgeOptions, type ResolvedPurgeOptions } from './purge/purge.options.js';


/** Options that shape the module itself and so cannot come from an async factory. */
export interface ApiAuthModuleExtras {
  /**
   * Register the module globally so `ApiKeyGuard` and `ApiKeyService` resolve in
   * every module without importing it again. Default `true`: authentication is an
   * application-wide concern.
   */
  isGlobal?: boolean;
  /**
   * Serve the key-management routes (`POST /api-keys`, `GET /api-keys`, ...): `true`
   * for the defaults, or options (path, admin and self-service scopes, allowed
   * scopes). Default `false`. The routes always require a verified key holding the
   * admin or the self-service scope; no setting leaves them open.
   */
  routes?: ApiAuthRoutesOptions | boolean;
}

/** Options of `ApiAuthModule.forRoot()` / the factory of `forRootAsync()`. */
export interface ApiAuthModuleOptions {
  /**
   * Where keys are stored. Defaults to a new `MemoryBackend` (lost on restart). Pass a
   * `MikroOrmBackend`, `RedisBackend`, `RedisCacheBackend` or your own implementation.
   * The module never closes a backend you pass: close what you opened.
   */
  backend?: ApiKeyBackend;
  /**
   * Prefix of every key this deployment mints and accepts, e.g. `"prod_"`: letters,
   * digits and `_`, 1-32 characters. Keys of another prefix are rejected without a
   * lookup. Default `"sk_"`.
   */
  prefix?: string;
  /**
   * A server-side secret (at least 16 bytes). When set, keys are stored as
   * HMAC-SHA256 instead of SHA-256, so a leaked table of hashes cannot be checked
   * against guessed keys without it. Changing it invalidates every stored key.
   */
  pepper?: string | Buffer;
  /** Request header carrying the key, matched case-insensitively. Default `"x-api-key"`. */
  header?: string;
  /** Also accept `Authorization: Bearer <key>` (scheme matched case-insensitively). Default `true`. */
  bearer?: boolean;
  /**
   * Name of a query-string parameter to accept the key from, or `false`. Default
   * `false`: URLs end up in proxy and access logs, so keys in them leak.
   */
  queryParam?: string | false;
  /** Record `lastUsedAt` on successful verification. Default `true`. */
  trackUsage?: boolean;
  /**
   * At most one `lastUsedAt` write per key per this many milliseconds. Writes happen
   * after the response path, batched, and never fail a request. `0` writes every use,
   * but never piles writes up on a slow store: one write per key at a time (later uses
   * only move the time it writes next), at most 16 at once per process, and at most
   * 10,000 keys waiting, the oldest update dropped past that (with one warning).
   * Default `60000`.
   */
  usageIntervalMs?: number;
  /**
   * Shares usage writes out across a fleet, so the store receives at most one
   * `lastUsedAt` write per key per `usageIntervalMs` from all instances together, not
   * one per instance: a `RedisUsageCoordinator` from `nestjs-api-auth/redis`. When it
   * fails, each instance writes its own, as without it. Default: none (per instance).
   * Never closed by the module.
   */
  usageCoordinator?: UsageWriteCoordinator;
  /**
   * How long verification waits for the backend before answering 503, in
   * milliseconds; `0` waits forever. Also bounds the usage flush at shutdown (5 s
   * when `0`, so a hung store cannot hold shutdown). Default `5000`.
   */
  verifyTimeoutMs?: number;
  /**
   * Most backend lookups that may be pending at once in this process. A lookup counts
   * until the backend settles it, not until `verifyTimeoutMs` answers the client: a
   * store that hangs keeps every lookup it was given. Beyond the bound, a request the
   * L1 cannot answer gets 503 `backend_unavailable` at once, without asking the
   * backend, so a hung store holds at most this many lookups' promises and sockets
   * instead of one per request. `0` removes the bound. Default `1000`.
   */
  maxPendingLookups?: number;
  /** Realm named in the `WWW-Authenticate` header. Default `"api"`. */
  realm?: string;
  /** Largest accepted `metadata`, in bytes of its JSON form. Default `8192`. */
  maxMetadataBytes?: number;
  /** Most scopes one key may hold. Default `100`. */
  maxScopes?: number;
  /**
   * Most keys one owner may have stored, revoked and expired ones included until they
   * are deleted: `issue`, `import` and `rotate` (whose replacement is one more record)
   * refuse one more with `ApiKeyLimitReachedError` (HTTP 409 `key_limit_reached`), so
   * one self-service key cannot mint keys without end. `null` for no limit. Default
   * `1000`. Checked by counting before writing, not atomically: issues for one owner
   * running at the same moment (on one instance or many) can each see room, so an
   * owner can end up over the limit by at most the number of such concurrent issues
   * less one. It bounds runaway minting; it is not an exact quota.
   */
  maxKeysPerOwner?: number | null;
  /**
   * The environment this deployment mints keys in, e.g. `"live"` or `"test"` (letters
   * and digits, 1-16). It becomes part of the key prefix (`sk_` + `live` mints
   * `sk_live_…`) and is stored on the record, so a key of another environment fails
   * the offline prefix check, without a lookup. Default: none (keys are `sk_…`).
   */
  environment?: string;
  /**
   * Environments whose keys this deployment accepts, e.g. `["live", "test"]` for an
   * API that serves both, with `@RequireEnvironment('live')` on the routes test keys
   * must not reach. Must include `environment`. Default: `[environment]` only.
   */
  acceptEnvironments?: string[];
  /**
   * Keeps the counters of per-key rate limits and quotas (`policy` on a key). Default:
   * a `MemoryRateLimiter` (per process). For several instances, pass a
   * `RedisRateLimiter` from `nestjs-api-auth/redis`. Never closed by the module.
   */
  rateLimiter?: RateLimiter;
  /**
   * Where to emit key events (issued, updated, rotated, revoked, deleted, imported,
   * authentication denied): `EventEmitter2` from `@nestjs/event-emitter`, injected
   * through `forRootAsync`, or any object with `emit(name, payload)`.
   */
  events?: ApiKeyEventEmitter;
  /** A plain callback for every event, for apps without an event emitter. Its errors never fail a request. */
  onEvent?: ApiKeyEventListener;
  /**
   * Prefixes of keys imported from another system (`ApiKeyService.import`) that do not
   * have this library's format. Keys starting with one are accepted without the
   * checksum check (16-512 printable characters) and looked up. Default none.
   */
  legacyKeyPrefixes?: string[];
  /**
   * Peppers used before `pepper`, newest first, for rotating it without breaking keys;
   * `null` stands for "no pepper" (plain SHA-256), to introduce a pepper. A key whose
   * hash is not found under `pepper` is looked up under each of these in turn; when
   * found, its stored hash is upgraded to `pepper` on that first use (once across a
   * fleet, through the backend's `replaceHash`), and an `api-key.rehashed` event names
   * it. An unknown key costs one extra lookup per previous pepper (the negative cache
   * absorbs repeats). Procedure: docs/security.md, "Rotating the pepper". Default none.
   */
  previousPeppers?: Array<string | Buffer | null>;
  /**
   * How long keys live: `defaultMs` for a key issued or imported without `expiresAt`,
   * and `maxMs` as the longest life any key may be given (issue, import, update,
   * self-service; a rotation's replacement is capped). See `KeyLifetimeOptions`.
   * Default: no default, no maximum.
   */
  keyLifetime?: KeyLifetimeOptions;
  /**
   * Scopes a key is issued or imported with when the caller gives none (`scopes`
   * absent; an explicit `[]` stands). Over HTTP, `scopes` may then be left out of
   * `POST /api-keys`; a self-service caller's key gets only the defaults it holds
   * itself. Validated at start-up like any key's scopes. Default none.
   */
  defaultScopes?: string[];
  /**
   * Policy (rate limits, quota, allowed addresses) a key is issued or imported with
   * when the caller gives none (`policy` absent; an explicit `null` stands). A
   * self-service caller with a policy of its own passes its own on instead. Validated
   * at start-up like any key's policy; it may not set `counterKey`. Default none.
   */
  defaultPolicy?: ApiKeyPolicy;
  /**
   * Delete expired and revoked keys periodically (`ApiKeyService.purge`), on one
   * instance of a fleet per interval when `usageCoordinator` is shared (each instance
   * otherwise, which is harmless). Stopped at shutdown. See `ApiAuthPurgeOptions`.
   * Default: off.
   */
  purge?: ApiAuthPurgeOptions;
}

/** Options after defaults and validation; what the services receive. */
export interface ResolvedApiAuthOptions {
  backend: ApiKeyBackend;
  /** Whether the module created the backend itself (and so owns it). */
  ownsBackend: boolean;
  prefix: string;
  pepper: string | Buffer | null;
  header: string;
  bearer: boolean;
  queryParam: string | false;
  trackUsage: boolean;
  usageIntervalMs: number;
  usageCoordinator: UsageWriteCoordinator;
  verifyTimeoutMs: number;
  /** `0` when unbounded. */
  maxPendingLookups: number;
  realm: string;
  maxMetadataBytes: number;
  maxScopes: number;
  /** `null` when unbounded. */
  maxKeysPerOwner: number | null;
  /** The environment new keys are minted in; `null` without environments. */
  environment: string | null;
  /** Accepted environments, `environment` first; `[null]` without environments. */
  environments: Array<string | null>;
  rateLimiter: RateLimiter;
  /** Delivers an event; `null` when nobody listens. */
  emitEvent: ApiKeyEventSink | null;
  legacyKeyPrefixes: string[];
  /** `[]` without pepper rotation. */
  previousPeppers: Array<string | Buffer | null>;
  keyLifetime: ResolvedKeyLifetime;
  /** As given (validated when the service starts); `null` when unset. */
  defaultScopes: string[] | null;
  /** As given (validated when the service starts); `null` when unset. */
  defaultPolicy: ApiKeyPolicy | null;
  /** `null` when periodic purging is off. */
  purge: ResolvedPurgeOptions | null;
}

export const DEFAULT_PREFIX = 'sk_';

/** Every option of {@link ApiAuthModuleOptions}: an option the module does not know stops start-up. */
export const API_AUTH_OPTION_NAMES = optionNames<ApiAuthModuleOptions>({
  backend: true,
  prefix: true,
  pepper: true,
  header: true,
  bearer: true,
  queryParam: true,
  trackUsage: true,
  usageIntervalMs: true,
  usageCoordinator: true,
  verifyTimeoutMs: true,
  maxPendingLookups: true,
  realm: true,
  maxMetadataBytes: true,
  maxScopes: true,
  maxKeysPerOwner: true,
  environment: true,
  acceptEnvironments: true,
  rateLimiter: true,
  events: true,
  onEvent: true,
  legacyKeyPrefixes: true,
  previousPeppers: true,
  keyLifetime: true,
  defaultScopes: true,
  defaultPolicy: true,
  purge: true,
});

/**
 * The module's extras reach the builder beside the factory, never through it: they
 * shape the module (global or not, which controllers), which must be known before any
 * provider runs. In a factory's result they would be ignored, so they are refused.
 */
const EXTRAS_IN_FACTORY: { readonly [K in keyof ApiAuthModuleExtras]-?: string } = {
  isGlobal: 'cannot come from the forRootAsync() factory: pass it to forRootAsync() itself, beside useFactory.',
  routes: 'cannot come from the forRootAsync() factory: pass it to forRootAsync() itself, beside useFactory.',
};

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const BACKEND_METHODS = ['getByHash', 'getById', 'create', 'update', 'delete', 'listByOwner', 'recordUsage'] as const;

function fail(option: string, expectation: string, value: unknown): never {
  const shown = typeof value === 'string' || typeof value === 'number' ? JSON.stringify(value) : typeof value;
  throw new Error(`nestjs-api-auth: option "${option}" ${expectation} (got ${shown}).`);
}

function nonNegativeInteger(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(option, 'must be a non-negative integer', value);
  }
  return value;
}

function positiveInteger(option: string, value: unknown, fallback: number): number {
  const n = nonNegativeInteger(option, value, fallback);
  if (n === 0) fail(option, 'must be greater than 0', value);
  return n;
}

/** Merges user options over the defaults and validates them, naming any bad option. Runs once at start-up. */
export function resolveApiAuthOptions(options: ApiAuthModuleOptions | undefined | null): ResolvedApiAuthOptions {
  if (options == null || typeof options !== 'object') {
    throw new Error('nestjs-api-auth: ApiAuthModule options must be an object.');
  }
  assertKnownOptions(options, API_AUTH_OPTION_NAMES, { misplaced: EXTRAS_IN_FACTORY });
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  assertValidPrefix(prefix);

  const header = options.header ?? 'x-api-key';
  if (typeof header !== 'string' || !HEADER_NAME.test(header)) fail('header', 'must be a valid HTTP header name', header);
  if (header.toLowerCase() === 'authorization') {
    fail('header', 'must not be "authorization"; use the "bearer" option for Authorization: Bearer', header);
  }

  const queryParam = options.queryParam ?? false;
  if (queryParam !== false && (typeof queryParam !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(queryParam))) {
    fail('queryParam', 'must be false or a parameter name of letters, digits, "_", "." or "-"', queryParam);
  }

  const backend = options.backend;
  if (backend !== undefined) {
    for (const method of BACKEND_METHODS) {
      if (typeof (backend as unknown as Record<string, unknown>)?.[method] !== 'function') {
        fail('backend', `must implement ApiKeyBackend (missing method "${method}")`, backend);
      }
    }
  }

  const pepper = options.pepper ?? null;
  if (pepper !== null && typeof pepper !== 'string' && !Buffer.isBuffer(pepper)) {
    fail('pepper', 'must be a string or a Buffer', pepper);
  }

  const usageCoordinator = options.usageCoordinator;
  if (usageCoordinator !== undefined && typeof (usageCoordinator as Partial<UsageWriteCoordinator>)?.claim !== 'function') {
    fail('usageCoordinator', 'must implement UsageWriteCoordinator (a claim method)', usageCoordinator);
  }

  const realm = options.realm ?? 'api';
  if (typeof realm !== 'string' || !/^[\x20-\x7e]{1,64}$/.test(realm) || realm.includes('"') || realm.includes('\\')) {
    fail('realm', 'must be 1-64 printable ASCII characters without quotes or backslashes', realm);
  }

  for (const flag of ['bearer', 'trackUsage'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') fail(flag, 'must be a boolean', options[flag]);
  }

  const environment = options.environment ?? null;
  if (environment !== null && !isEnvironmentName(environment)) {
    fail('environment', 'must be 1-16 letters and digits', environment);
  }
  const accepted = options.acceptEnvironments;
  if (accepted !== undefined) {
    if (environment === null) fail('acceptEnvironments', 'needs the "environment" option', 'without environment');
    if (!Array.isArray(accepted) || !accepted.every(isEnvironmentName)) {
      fail('acceptEnvironments', 'must be an array of environment names (1-16 letters and digits)', accepted);
    }
    if (!accepted.includes(environment)) fail('acceptEnvironments', `must include the "environment" (${environment})`, accepted.join(','));
  }
  const environments = environment === null ? [null] : [...new Set([environment, ...(accepted ?? [])])];
  for (const env of environments) assertValidPrefix(environmentPrefix(prefix, env), 'environment');

  const rateLimiter = options.rateLimiter;
  if (rateLimiter !== undefined && typeof (rateLimiter as Partial<RateLimiter>)?.consume !== 'function') {
    fail('rateLimiter', 'must implement RateLimiter (a consume method)', rateLimiter);
  }
  if (options.events !== undefined && typeof (options.events as Partial<ApiKeyEventEmitter>)?.emit !== 'function') {
    fail('events', 'must have an emit(event, payload) method, like EventEmitter2', options.events);
  }
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') fail('onEvent', 'must be a function', options.onEvent);
  if (options.purge !== undefined && backend !== undefined && typeof backend.purge !== 'function') {
    fail('purge', 'needs a backend that implements the optional method "purge"', backend);
  }
  const legacyKeyPrefixes = options.legacyKeyPrefixes ?? [];
  assertLegacyPrefixes(legacyKeyPrefixes);
  // Built once here only to validate; the verifier builds its own from the same list.
  previousPepperHashers(options.previousPeppers, pepper);
  if (options.defaultScopes !== undefined && !Array.isArray(options.defaultScopes)) {
    fail('defaultScopes', 'must be an array of scopes', options.defaultScopes);
  }
  if (options.defaultPolicy !== undefined && (options.defaultPolicy === null || typeof options.defaultPolicy !== 'object')) {
    fail('defaultPolicy', 'must be a policy object', options.defaultPolicy);
  }

  return {
    backend: backend ?? new MemoryBackend(),
    ownsBackend: backend === undefined,
    prefix,
    pepper,
    header: header.toLowerCase(),
    bearer: options.bearer ?? true,
    queryParam,
    trackUsage: options.trackUsage ?? true,
    usageIntervalMs: nonNegativeInteger('usageIntervalMs', options.usageIntervalMs, 60_000),
    usageCoordinator: usageCoordinator ?? new NoopUsageWriteCoordinator(),
    verifyTimeoutMs: nonNegativeInteger('verifyTimeoutMs', options.verifyTimeoutMs, 5_000),
    maxPendingLookups: nonNegativeInteger('maxPendingLookups', options.maxPendingLookups, 1_000),
    realm,
    maxMetadataBytes: positiveInteger('maxMetadataBytes', options.maxMetadataBytes, 8_192),
    maxScopes: positiveInteger('maxScopes', options.maxScopes, 100),
    maxKeysPerOwner: options.maxKeysPerOwner === null ? null : positiveInteger('maxKeysPerOwner', options.maxKeysPerOwner, 1_000),
    environment,
    environments,
    rateLimiter: rateLimiter ?? new MemoryRateLimiter(),
    emitEvent: createEventSink(options.events, options.onEvent),
    legacyKeyPrefixes: [...legacyKeyPrefixes],
    previousPeppers: [...(options.previousPeppers ?? [])],
    keyLifetime: resolveKeyLifetime(options.keyLifetime),
    defaultScopes: options.defaultScopes === undefined ? null : [...options.defaultScopes],
    defaultPolicy: options.defaultPolicy ?? null,
    purge: resolvePurgeOptions(options.purge),
  };
}
