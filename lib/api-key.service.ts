import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { API_AUTH_OPTIONS } from './api-auth.constants.js';
import type { ResolvedApiAuthOptions } from './api-auth.options.js';
import { toApiKeyView, type ApiKeyView } from './api-key.interface.js';
import { ApiKeyErrorCode, BackendUnavailableError } from './api-key.errors.js';
import { redactedError } from './internal/safe-error-message.js';
import { KeyOperations } from './management/key-operations.js';
import { collectPage, pageLimit, pageStart } from './management/key-page.js';
import type { SetKeyStatusOptions } from './management/key-status.js';
import { listAllPage, type ApiKeyListAllPage, type ListAllPageOptions } from './management/list-all.js';
import type {
  ApiKeyPage,
  ImportApiKeyInput,
  ImportApiKeySource,
  IssueApiKeyInput,
  IssuedApiKey,
  RevokeApiKeyOptions,
  RotateApiKeyOptions,
  RotatedApiKey,
  UpdateApiKeyInput,
  UpdateApiKeyOptions,
} from './management/key-inputs.js';
import { KeyVerifier, type AuthenticationResult } from './verification/key-verifier.js';
import { purgeKeys } from './purge/key-purge.js';
import type { PurgeKeysOptions, PurgeResult } from './purge/purge.options.js';
import { consumeKey, type ConsumeOptions, type ConsumeOutcome } from './verification/key-consumption.js';
import type { ApiKeyUsage, QuotaBalance } from './policy/quota-balance.js';
import type { QuotaChange } from './policy/rate-limiter.interface.js';
import { KeyQuotas } from './management/key-quotas.js';

/** Longest wait for the usage flush at shutdown when `verifyTimeoutMs` is 0. */
const SHUTDOWN_FLUSH_TIMEOUT_MS = 5_000;

/** Issues, verifies and manages API keys over the configured backend. */
@Injectable()
export class ApiKeyService extends KeyVerifier implements OnApplicationShutdown {
  private readonly operations: KeyOperations;
  private readonly quotas: KeyQuotas;

  constructor(@Inject(API_AUTH_OPTIONS) options: ResolvedApiAuthOptions) {
    super(options);
    this.quotas = new KeyQuotas(options);
    this.operations = new KeyOperations(options, {
      formats: this.formats,
      legacy: this.legacy,
      hasher: this.hasher,
      environmentOf: (key) => this.environmentOf(key),
      countByOwner: (ownerId) => this.countByOwner(ownerId),
    });
  }

  /**
   * Mints a key for `input.ownerId`. The plaintext is in the result and nowhere else.
   * Fields left out (`undefined`) get the module's `defaultScopes`, `defaultPolicy` and
   * `keyLifetime.defaultMs`; an expiry past `keyLifetime.maxMs` throws `ApiKeyValidationError`.
   */
  issue(input: IssueApiKeyInput): Promise<IssuedApiKey> {
    return this.operations.issue(input);
  }

  /**
   * Stores a key that another system minted, so its holders keep using it after a
   * migration. Give the plaintext (`{ key }`) when you have it: it must be a key of
   * this deployment's format, or start with one of the `legacyKeyPrefixes`, since
   * the guard would refuse anything else before any lookup. Or give the SHA-256 the
   * other system stored (`{ keyHash, hint }`); that works only without a `pepper`,
   * and the plaintext must still pass the guard's check when it is used. Resolves to
   * the record; there is no plaintext to return.
   */
  import(source: ImportApiKeySource, input: ImportApiKeyInput): Promise<ApiKeyView> {
    return this.operations.import(source, input);
  }

  /**
   * The key's record when `key` is a valid, unexpired, unrevoked key; otherwise `null`.
   * Throws `BackendUnavailableError` when the store cannot answer, so `null` always
   * means "not a valid key". It applies no policy (IP allowlist, rate limits, quota);
   * code outside HTTP that must enforce them, or needs the refusal's code, calls
   * {@link consume}.
   */
  async verify(key: string): Promise<ApiKeyView | null> {
    const result = await this.check(key);
    if (result.ok) return result.apiKey;
    if (result.code === ApiKeyErrorCode.BackendUnavailable) {
      throw result.error instanceof BackendUnavailableError
        ? result.error
        : new BackendUnavailableError(undefined, { cause: redactedError(result.error) });
    }
    return null;
  }

  /**
   * Verification with the reason for a refusal, applying no policy. Never throws: a
   * backend failure or timeout comes back as `backend_unavailable`.
   *
   * @deprecated One verb authenticates a key: {@link verify} for the record, or
   * {@link consume} for the guard's whole decision with its refusal code. Kept for
   * callers of earlier versions; removed in the next major.
   */
  async authenticate(key: string): Promise<AuthenticationResult> {
    return this.check(key);
  }

  /** The record with this id (without its hash), or `null`. */
  async get(id: string): Promise<ApiKeyView | null> {
    const record = await this.backend.getById(id);
    return record ? toApiKeyView(record) : null;
  }

  /** Streams every key of an owner, oldest first. */
  async *listByOwner(ownerId: string): AsyncIterable<ApiKeyView> {
    for await (const record of this.backend.listByOwner(ownerId)) yield toApiKeyView(record);
  }

  /** One page of an owner's keys, oldest first, with an opaque cursor for the next. */
  async listPage(ownerId: string, options: { cursor?: string | null; limit?: number } = {}): Promise<ApiKeyPage> {
    const limit = pageLimit(options.limit);
    const page = await collectPage(this.backend.listByOwner(ownerId, { after: pageStart(options.cursor), limit: limit + 1 }), limit);
    return { ...page, total: await this.countByOwner(ownerId) };
  }

  /** How many keys an owner has. */
  async countByOwner(ownerId: string): Promise<number> {
    if (this.backend.countByOwner) return this.backend.countByOwner(ownerId);
    let count = 0;
    for await (const _ of this.backend.listByOwner(ownerId)) count++;
    return count;
  }

  /**
   * Changes only the given fields (name, scopes, metadata, expiry, policy), in one
   * atomic store write: a concurrent update of other fields is never undone. With
   * `expectedVersion`, writes only if the key is still at that version
   * (`VersionConflictError` otherwise). Throws `ApiKeyNotFoundError` for an unknown id,
   * and `ApiKeyValidationError` for an unknown field or no field at all.
   */
  update(id: string, changes: UpdateApiKeyInput, options: UpdateApiKeyOptions = {}): Promise<ApiKeyView> {
    return this.operations.update(id, changes, options);
  }

  /**
   * Revokes the key for good (soft delete). Revoking twice keeps the first
   * `revokedAt` and emits once. With `cascade`, also revokes every key it issued
   * (`issuedById`), transitively, each with an `api-key.revoked` event naming
   * `cascadeOf`; a backend without `listByIssuer` is searched through the issuer's
   * owner's keys, which hold every key a self-service key can mint.
   */
  revoke(id: string, options: RevokeApiKeyOptions = {}): Promise<ApiKeyView> {
    return this.operations.revoke(id, options);
  }

  /**
   * Removes the record entirely. Idempotent. The key's rate-limit and quota counters
   * stay where they are (see `RateLimiter.deleteCounters` for why): windowed counters
   * and refilling quotas expire as they would have anyway, and a quota that never
   * refills keeps its spent credits for any key that still counts against it,
   * including one whose issue or rotation raced this delete.
   */
  delete(id: string): Promise<void> {
    return this.operations.delete(id);
  }

  /**
   * Issues a replacement with the same owner, scopes, metadata and expiry (capped at
   * now + `keyLifetime.maxMs` when that is set), linked by `rotatedFromId`, and lets the
   * old key live for `gracePeriodMs` more.
   *
   * A key is rotated once. Its replacement's id is derived from its own, so the store
   * keeps exactly one replacement however many rotations of the key race, on however
   * many instances: every other one, and any later one, throws
   * `ApiKeyAlreadyRotatedError`, mints nothing and leaves the old key as the winner set
   * it. Deleting the replacement deletes that memory: an old key still inside its grace
   * period can then be rotated again (never extending the grace period).
   */
  rotate(id: string, options: RotateApiKeyOptions = {}): Promise<RotatedApiKey> {
    return this.operations.rotate(id, options);
  }

  /**
   * Deletes keys that expired before `expiredBefore` and/or were revoked before
   * `revokedBefore` (neither may be in the future), for good, in batches of `batchSize`
   * (one bounded backend call each), at most `maxBatches` per call: `done: false` means
   * call again to continue. Caches drop the deleted keys on every instance; one
   * `api-key.purged` event gives the count. Throws `UnsupportedBackendOperationError`
   * when the backend has no `purge`. The module's `purge` option runs it periodically.
   */
  purge(options: PurgeKeysOptions): Promise<PurgeResult> {
    return purgeKeys(this.backend, options, this.options.emitEvent);
  }

  /** The module's `defaultScopes`, validated; `null` when unset. For the management routes. */
  get defaultScopes(): readonly string[] | null {
    return this.operations.defaults.scopes;
  }

  /**
   * Switches the key off without revoking it: from the write on it is refused with
   * `disabled_api_key`, on every instance as a revoke is (the caches drop it on the
   * update). Disabling a disabled key writes and emits nothing; a revoked key throws
   * `ApiKeyRevokedError`. With `expectedVersion`, writes only at that version.
   */
  disable(id: string, options: SetKeyStatusOptions = {}): Promise<ApiKeyView> {
    return this.operations.setDisabled(id, true, options);
  }

  /**
   * Switches a disabled key back on. Enabling an enabled key writes and emits nothing;
   * a revoked key throws `ApiKeyRevokedError` (revocation stays final).
   */
  enable(id: string, options: SetKeyStatusOptions = {}): Promise<ApiKeyView> {
    return this.operations.setDisabled(id, false, options);
  }

  /**
   * One page of every owner's keys, newest first, filtered by owner, environment and
   * status, with an opaque cursor for the next. Needs the backend's optional `listAll`
   * (every shipped backend has it); throws `ListAllUnsupportedError` otherwise.
   */
  listAllPage(options: ListAllPageOptions = {}): Promise<ApiKeyListAllPage> {
    return listAllPage(this.backend, options);
  }

  /**
   * The same decision `ApiKeyGuard` makes for a route, for code outside HTTP (a queue
   * worker, a custom transport): the key's own verdict, then the key's IP allowlist
   * against `options.ip`, the environment and scopes asked for, and its rate limits
   * and quota, charging `options.cost` credits (default 1). Unlike {@link verify},
   * which only says whether the key is valid and applies no policy, this counts the
   * call. Resolves to `{ ok: true, apiKey, rateLimit, quota }`, or `{ ok: false, code,
   * status, ... }` with the guard's code and status for the same refusal; it never
   * rejects for a refusal, nor when the backend or the limiter is down (`503
   * backend_unavailable`). Throws `ApiKeyValidationError` only for invalid `options`.
   */
  consume(key: string, options: ConsumeOptions = {}): Promise<ConsumeOutcome> {
    return consumeKey(key, options, (k) => this.check(k), this.options.rateLimiter, this.options.emitEvent);
  }

  /**
   * The key's quota balance (and when it refills) and where each of its rate limits
   * stands, read from the `rateLimiter` without counting a call. Throws
   * `ApiKeyNotFoundError` for an unknown id, and `RateLimiterCapabilityError` when a
   * custom limiter has no `peek`.
   */
  getUsage(id: string): Promise<ApiKeyUsage> {
    return this.quotas.usage(id);
  }

  /**
   * Sets (`{ set: n }`) or tops up (`{ add: n }`, negative to take away) the key's quota
   * balance, atomically in the limiter, and emits `api-key.quota-changed`. The change
   * holds until the quota's next refill, which restores `limit`; keys on the same
   * counters (a rotated key and its replacement) share the balance. Throws
   * `ApiKeyValidationError` for a bad change or a key without a quota.
   */
  adjustQuota(id: string, change: QuotaChange): Promise<QuotaBalance> {
    return this.quotas.adjust(id, change);
  }

  /** Writes pending `lastUsedAt` updates now. Called on shutdown; useful in tests. */
  flushUsage(): Promise<void> {
    return this.usage.flush();
  }

  /**
   * Writes pending usage, waiting at most `verifyTimeoutMs` (forever when it is `0`):
   * a store that stopped answering must not hold the process open on shutdown.
   */
  async onApplicationShutdown(): Promise<void> {
    // A hung store must not hold shutdown: with `verifyTimeoutMs: 0` (verifications
    // wait as long as the store does) the flush still gets a bound of its own.
    const ms = this.options.verifyTimeoutMs || SHUTDOWN_FLUSH_TIMEOUT_MS;
    await this.operations.withTimeout(this.flushUsage(), ms).catch(() => undefined);
  }
}
