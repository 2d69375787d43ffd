import type { ApiKeyBackend } from './backends/backend.interface.js';
import type { ApiKeyEventEmitter, ApiKeyEventListener, ApiKeyEventSink } from './events/api-key-event.sink.js';
import type { UsageWriteCoordinator } from './usage/usage-coordinator.js';
import type { RateLimiter } from './policy/rate-limiter.interface.js';
import type { ApiAuthRoutesOptions } from './management/api-auth-routes.options.js';
import type { KeyLifetimeOptions, ResolvedKeyLifetime } from './management/key-lifetime.js';
import type { ApiKeyPolicy } from './policy/api-key-policy.js';
import type { ApiAuthPurgeOptions, ResolvedPurgeOptions } from './purge/purge.options.js';

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
   * The `Authorization` schemes that carry a key, matched case-insensitively: with
   * `['Bearer', 'Api-Key']`, `Authorization: Bearer <key>` and `Authorization: Api-Key
   * <key>` (djangorestframework-api-key's form) both work. `[]` reads no
   * `Authorization` header, as `bearer: false` does. Scheme names are HTTP tokens,
   * at most 32 characters, each listed once. Default `['Bearer']`; with `bearer: false`,
   * `[]`. Giving both `bearer: false` and a non-empty `schemes` is refused at start-up.
   */
  schemes?: string[];
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
   * it. An unknown key costs one extra lookup per previous pepper and one more read of
   * the current hash from the store (the L1 answers repeats offline). Procedure:
   * docs/security.md, "Rotating the pepper". Default none.
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
  /** Whether `Bearer` is among the `schemes`. */
  bearer: boolean;
  /** The accepted `Authorization` schemes, lower-cased; empty when none. */
  schemes: string[];
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
