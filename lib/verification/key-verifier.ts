import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import { ownedApiKeyView, type ApiKey, type ApiKeyView } from '../api-key.interface.js';
import { ApiKeyErrorCode, BackendUnavailableError, type AuthenticationFailureCode } from '../api-key.errors.js';
import type { ApiKeyBackend } from '../backends/backend.interface.js';
import { hasCachedLookup, type CachedLookup } from '../cache/cached-lookup.interface.js';
import { ReplyDeadlines } from '../internal/reply-deadlines.js';
import { KeyFormat } from '../keys/key-format.js';
import { KeyHasher, sameKeyHash } from '../keys/key-hasher.js';
import { LegacyKeyFormat } from '../keys/legacy-key-format.js';
import { environmentPrefix } from '../policy/environment.js';
import { UsageRecorder } from '../usage/usage-recorder.js';
import { previousPepperHashers } from '../keys/previous-peppers.js';
import { PepperUpgrade } from './pepper-upgrade.js';
import { storeOfRecord } from '../cache/store-of-record.js';
import { hasCallbackLookup, LOOK_UP_BY_HASH, type CallbackLookup } from './lookup-callbacks.js';

/** Outcome of {@link ApiKeyService.authenticate}: the key, or why it was refused. */
export type AuthenticationResult =
  | { ok: true; apiKey: ApiKeyView }
  | { ok: false; code: AuthenticationFailureCode }
  | { ok: false; code: typeof ApiKeyErrorCode.BackendUnavailable; error: unknown };

const INVALID = { ok: false, code: ApiKeyErrorCode.InvalidApiKey } as const;
const EXPIRED = { ok: false, code: ApiKeyErrorCode.ExpiredApiKey } as const;
const REVOKED = { ok: false, code: ApiKeyErrorCode.RevokedApiKey } as const;
const DISABLED = { ok: false, code: ApiKeyErrorCode.DisabledApiKey } as const;

/** The error a lookup or a bounded wait ends with when the backend does not answer in `ms`. */
export function backendTimedOut(ms: number): BackendUnavailableError {
  return new BackendUnavailableError(`The API key backend did not answer within ${ms} ms.`);
}

/** `environmentOf` result for a key of a `legacyKeyPrefixes` prefix. */
export const LEGACY = Symbol('legacy');
/** What a key's prefix says about its environment: a name, none, or a legacy import. */
export type KeyEnvironment = string | null | typeof LEGACY;

/**
 * The verification hot path: format check, hash, L1 peek, bounded backend lookup and
 * verdict. `ApiKeyService` extends it rather than holding one, so the guard's call to
 * `check` reaches this code with no extra call per request.
 */
export abstract class KeyVerifier {
  /** The key format new keys are minted in (prefix, length, checksum): the module's `environment`. */
  readonly format: KeyFormat;
  /** Every accepted format, with its environment; the minting one first. */
  protected readonly formats: ReadonlyArray<{ format: KeyFormat; environment: string | null }>;
  protected readonly legacy: LegacyKeyFormat;
  protected readonly hasher: KeyHasher;
  protected readonly backend: ApiKeyBackend;
  protected readonly usage: UsageRecorder;
  /** The backend's synchronous L1 lookup, when it has one (`CachedBackend`). */
  private readonly cached: CachedLookup | null;
  /** Backend lookups started and not yet settled, timed-out ones included (see `maxPendingLookups`). */
  private pendingLookups = 0;
  /** `verifyTimeoutMs` for lookups: one timer for all of them, not one each; `null` when 0. */
  private readonly lookupDeadlines: ReplyDeadlines | null;
  /** Hashers of `previousPeppers`, newest first; empty without pepper rotation. */
  private readonly previousHashers: readonly KeyHasher[];
  private readonly pepperUpgrade: PepperUpgrade | null;
  /** The backend behind the caches, for the fallback's last read. */
  private readonly storeOfRecord: ApiKeyBackend;
  /** The backend when it answers lookups through callbacks (see `LOOK_UP_BY_HASH`). */
  private readonly callbackLookup: CallbackLookup | null;

  protected constructor(protected readonly options: ResolvedApiAuthOptions) {
    this.formats = options.environments.map((environment) => ({
      format: new KeyFormat(environmentPrefix(options.prefix, environment)),
      environment,
    }));
    this.format = this.formats[0]!.format;
    this.legacy = new LegacyKeyFormat(options.legacyKeyPrefixes);
    this.hasher = new KeyHasher(options.pepper);
    this.backend = options.backend;
    this.usage = new UsageRecorder(options.backend, options.usageIntervalMs, options.trackUsage, options.usageCoordinator);
    this.cached = hasCachedLookup(options.backend) ? options.backend : null;
    this.lookupDeadlines = options.verifyTimeoutMs > 0 ? new ReplyDeadlines(options.verifyTimeoutMs, backendTimedOut) : null;
    this.previousHashers = previousPepperHashers(options.previousPeppers, options.pepper);
    this.storeOfRecord = storeOfRecord(options.backend);
    this.callbackLookup = hasCallbackLookup(options.backend) ? options.backend : null;
    this.pepperUpgrade =
      this.previousHashers.length === 0 ? null : new PepperUpgrade(options.backend, options.emitEvent, (promise) => this.bounded(promise));
  }

  /**
   * The key's own verdict, without a promise when it can be: synchronous when the
   * answer is offline (a malformed key) or in memory (an L1 or `MemoryBackend` hit).
   * The guard's hot path, so a cached key costs no promise and no microtask hop.
   *
   * @internal Not part of the public API: call `verify` or `consume`.
   */
  check(key: string): AuthenticationResult | Promise<AuthenticationResult> {
    return this.checkThen(key, undefined);
  }

  /**
   * `check`, with what to do with a verdict that needs the backend: `then(verdict)`
   * settles the one promise of the lookup, instead of a second promise chained to it
   * (the guard's hot path with a store that is not in memory). A synchronous verdict
   * is returned as it is, without `then`.
   *
   * @internal Not part of the public API.
   */
  checkThen<T>(key: string, then: ((verdict: AuthenticationResult) => T | Promise<T>) | undefined): AuthenticationResult | Promise<T> {
    // Offline checks first: malformed input never costs a hash or a lookup.
    const environment = this.environmentOf(key);
    if (environment === undefined) return INVALID;
    const keyHash = this.hasher.hash(key);
    // A warm L1 answers synchronously: no timeout race, no timer, no copy of the record.
    const hit = this.peek(keyHash);
    if (hit === null) {
      if (this.pepperUpgrade === null) return INVALID;
      const verdict = this.underPreviousPeppers(key, keyHash, environment);
      return verdict instanceof Promise && then !== undefined ? verdict.then(then) : (verdict as AuthenticationResult | Promise<T>);
    }
    // The cached view is frozen and shared by every hit.
    if (hit !== undefined) return this.judge(hit.record, environment, hit.view);
    return this.lookupAndJudge(keyHash, environment, key, then);
  }

  /**
   * Asks the backend, within `verifyTimeoutMs`. One promise, settled by whichever comes
   * first, the backend or the deadline, with `then(verdict)` when given: no async
   * frame, no race, no timer per lookup. A backend with `LOOK_UP_BY_HASH` answers
   * through callbacks, so the lookup adds no promise of its own.
   */
  private lookupAndJudge<T>(
    keyHash: string,
    environment: KeyEnvironment,
    key: string,
    then: ((verdict: AuthenticationResult) => T | Promise<T>) | undefined,
  ): AuthenticationResult | Promise<T> {
    const max = this.options.maxPendingLookups;
    if (max !== 0 && this.pendingLookups >= max) {
      // The store is not keeping up; another lookup would only add to what it holds.
      const error = new BackendUnavailableError(`${max} API key lookups are pending; refusing without asking the backend.`);
      return { ok: false, code: ApiKeyErrorCode.BackendUnavailable, error };
    }
    const callbacks = this.callbackLookup;
    let lookup: Promise<ApiKey | null> | undefined;
    if (callbacks === null) {
      try {
        lookup = this.backend.getByHash(keyHash);
      } catch (error) {
        return { ok: false, code: ApiKeyErrorCode.BackendUnavailable, error };
      }
    }
    // A lookup counts until the backend settles it: the deadline answers the client, but
    // a hung store still holds the lookup.
    this.pendingLookups++;
    const deadlines = this.lookupDeadlines;
    return new Promise<T>((resolve, reject) => {
      let late = false;
      const settle = (verdict: AuthenticationResult | Promise<AuthenticationResult>) => {
        try {
          if (then === undefined) resolve(verdict as T | Promise<T>);
          else resolve(verdict instanceof Promise ? verdict.then(then) : then(verdict));
        } catch (error) {
          reject(error);
        }
      };
      const deadline = deadlines?.start((error) => {
        late = true;
        settle({ ok: false, code: ApiKeyErrorCode.BackendUnavailable, error });
      });
      // `sharedView`: a frozen record the backend shares between lookups, judged like an L1 hit.
      const onRecord = (record: Readonly<ApiKey> | null, sharedView?: Readonly<ApiKeyView>) => {
        this.pendingLookups--;
        // Already answered 503: a late record must not count as a use of the key.
        if (late) return;
        if (deadline !== undefined) deadlines!.clear(deadline);
        let verdict: AuthenticationResult | Promise<AuthenticationResult>;
        try {
          verdict =
            record === null && this.pepperUpgrade !== null
              ? this.underPreviousPeppers(key, keyHash, environment)
              : this.judgeLookup(record, keyHash, environment, lookup === undefined, sharedView);
        } catch (error) {
          reject(error);
          return;
        }
        settle(verdict);
      };
      const onError = (error: unknown) => {
        this.pendingLookups--;
        if (late) return;
        if (deadline !== undefined) deadlines!.clear(deadline);
        settle({ ok: false, code: ApiKeyErrorCode.BackendUnavailable, error });
      };
      if (lookup !== undefined) {
        lookup.then(onRecord, onError);
        return;
      }
      try {
        callbacks![LOOK_UP_BY_HASH](keyHash, onRecord, onError);
      } catch (error) {
        onError(error);
      }
    });
  }

  /**
   * Pepper rotation's fallback, only after the current hash missed: the key under each
   * previous pepper in turn. A hit is judged as usual and, when it verifies, its stored
   * hash is upgraded to the current pepper before the answer, so the next use is an
   * ordinary lookup.
   */
  private underPreviousPeppers(key: string, currentHash: string, environment: KeyEnvironment): AuthenticationResult | Promise<AuthenticationResult> {
    const hashes = this.previousHashers.map((hasher) => hasher.hash(key));
    // When the L1 (or MemoryBackend) knows every old hash as unknown, answer without a
    // promise: an unknown key then costs its HMACs and nothing more.
    if (hashes.every((hash) => this.peek(hash) === null)) return INVALID;
    return this.lookUpPreviousHashes(hashes, currentHash, environment);
  }

  private async lookUpPreviousHashes(hashes: string[], currentHash: string, environment: KeyEnvironment): Promise<AuthenticationResult> {
    for (const oldHash of hashes) {
      let record: ApiKey | null;
      try {
        record = await this.bounded(this.backend.getByHash(oldHash));
      } catch (error) {
        return { ok: false, code: ApiKeyErrorCode.BackendUnavailable, error };
      }
      if (record === null || !sameKeyHash(record.keyHash, oldHash)) continue;
      const verdict = this.judge(record, environment, undefined);
      if (verdict.ok) await this.pepperUpgrade!.upgrade(record.id, oldHash, currentHash);
      return verdict;
    }
    // Another instance may have moved the key to the current hash between the first
    // lookup and these: ask the store of record once more, past any cache that still
    // remembers the first miss (its invalidation may not have arrived yet).
    let moved: ApiKey | null;
    try {
      moved = await this.bounded(this.storeOfRecord.getByHash(currentHash));
    } catch (error) {
      return { ok: false, code: ApiKeyErrorCode.BackendUnavailable, error };
    }
    if (moved === null || !sameKeyHash(moved.keyHash, currentHash)) return INVALID;
    // This process's cache may still hold the first miss: the next use must not trust it.
    this.cached?.forgetHash?.(currentHash);
    return this.judge(moved, environment, undefined);
  }

  /** A backend call within `verifyTimeoutMs`, off the hot path. */
  private bounded<T>(promise: Promise<T>): Promise<T> {
    return this.lookupDeadlines === null ? promise : this.lookupDeadlines.track(promise);
  }

  /**
   * `compared`: the backend answers only a record of `keyHash` (see `LOOK_UP_BY_HASH`).
   * `sharedView`: the record is shared and frozen, and this is its view (same).
   */
  private judgeLookup(
    record: Readonly<ApiKey> | null,
    keyHash: string,
    environment: KeyEnvironment,
    compared = false,
    sharedView?: Readonly<ApiKeyView>,
  ): AuthenticationResult {
    // A backend that returns the wrong record must not let anyone in. (The L1 files a
    // record only under its own hash, so a hit needs no such check.)
    if (!record || !(compared || sameKeyHash(record.keyHash, keyHash))) return INVALID;
    return this.judge(record, environment, sharedView);
  }

  private judge(record: Readonly<ApiKey>, environment: KeyEnvironment, view: ApiKeyView | undefined): AuthenticationResult {
    // The prefix named the environment; a record of another one (copied between
    // deployments' stores, say) is not this key's.
    if (environment === LEGACY ? !this.options.environments.includes(record.environment ?? null) : (record.environment ?? null) !== environment) {
      return INVALID;
    }
    if (record.revokedAt !== null) return REVOKED;
    // `!= null`: a custom backend written before keys could be disabled leaves it out.
    if (record.disabledAt != null) return DISABLED;
    const now = Date.now();
    if (record.expiresAt !== null && record.expiresAt.getTime() <= now) return EXPIRED;
    this.usage.record(record.id, record.lastUsedAt, now);
    // Without a shared view, the record is the backend's answer: a copy by contract.
    return { ok: true, apiKey: view ?? ownedApiKeyView(record as ApiKey) };
  }

  /**
   * The environment named by the key's prefix (`null` without environments), `LEGACY`
   * for an imported key of a legacy prefix, or `undefined` when the key is none of
   * these. Offline: no hash, no lookup.
   */
  protected environmentOf(key: string): string | null | typeof LEGACY | undefined {
    const formats = this.formats;
    for (let i = 0; i < formats.length; i++) {
      if (formats[i]!.format.matches(key)) return formats[i]!.environment;
    }
    return typeof key === 'string' && this.legacy.matches(key) ? LEGACY : undefined;
  }

  /** The L1's answer, or `undefined` (ask the backend) when there is no L1 or it failed. */
  private peek(keyHash: string) {
    if (this.cached === null) return undefined;
    try {
      return this.cached.peekByHash(keyHash);
    } catch {
      return undefined;
    }
  }
}
