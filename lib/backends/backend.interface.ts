import type { ApiKey } from '../api-key.interface.js';

/** Position after which `listByOwner` resumes: the last record a caller saw. */
export interface ApiKeyCursor {
  createdAt: Date;
  id: string;
}

/** Fields `update` may change; every other field is immutable after create. */
export type ApiKeyChanges = Partial<
  Pick<ApiKey, 'name' | 'scopes' | 'metadata' | 'expiresAt' | 'revokedAt' | 'policy' | 'disabledAt'>
> & {
  /** Always given by the service: the write's time. */
  updatedAt: Date;
};

/** Options of {@link ApiKeyBackend.update}. */
export interface UpdateOptions {
  /** Write only if the stored `version` equals this; otherwise reject with `VersionConflictError`. */
  expectedVersion?: number;
}

/** Options for {@link ApiKeyBackend.listByOwner}. */
export interface ListByOwnerOptions {
  /** Resume strictly after this position (keyset pagination). */
  after?: ApiKeyCursor;
  /** Stop after yielding this many records. */
  limit?: number;
}

/** Options of {@link ApiKeyBackend.purge}. Each criterion applies only when given; at least one is. */
export interface PurgeOptions {
  /** Delete records whose `expiresAt` is earlier than this. */
  expiredBefore?: Date;
  /** Delete records whose `revokedAt` is earlier than this. */
  revokedBefore?: Date;
  /** Delete at most this many records in this call (a positive integer). */
  limit: number;
  /**
   * Called with the id and hash of the records this call deleted, before it resolves,
   * so a cache in front of the store can drop them. A backend that never calls it
   * still works: the caches then drop every entry after a purge that deleted something.
   */
  onDeleted?: (records: ReadonlyArray<Pick<ApiKey, 'id' | 'keyHash'>>) => void;
}

/** What a key is at an instant, for `listAll`'s `status` filter (see `keyStatusAt`). */
export type ApiKeyStatus = 'active' | 'expired' | 'revoked' | 'disabled';

/** Options of {@link ApiKeyBackend.listAll}. */
export interface ListAllOptions {
  /**
   * Resume strictly after this position in the listing's order (newest first), i.e.
   * with records older than it: keyset pagination, as `listByOwner`'s `after`.
   */
  after?: ApiKeyCursor;
  /** Stop after yielding this many records. */
  limit?: number;
  /** Only this owner's keys. */
  ownerId?: string;
  /** Only keys of this environment; `null` for keys without one. */
  environment?: string | null;
  /**
   * Only keys in this state at `now`. When several apply the first wins: revoked, then
   * disabled, then expired (`expiresAt <= now`), else active.
   */
  status?: ApiKeyStatus;
  /** The instant `status` is judged at; given by the service. */
  now: Date;
}

/**
 * The contract every key store keeps. Implement it for your own store and run the
 * conformance suite (`runBackendConformance` from `nestjs-api-auth/testing`) to prove it.
 *
 * Guarantees each implementation must keep:
 * - Records go in and come out as copies: mutating a returned record, or one passed
 *   to `create` (or the changes passed to `update`) after the call, never changes what is stored.
 * - Dates come back as `Date` instances with at least millisecond precision.
 * - Failures to reach the store throw `BackendUnavailableError` (or let the service's
 *   timeout turn them into one), never resolve as "not found".
 * - No error message contains a key hash.
 */
export interface ApiKeyBackend {
  /** The record whose `keyHash` equals `keyHash`, or `null`. The hot path of verification. */
  getByHash(keyHash: string): Promise<ApiKey | null>;

  /** The record with this id, or `null`. */
  getById(id: string): Promise<ApiKey | null>;

  /**
   * Stores a new record and resolves to it. Rejects with `DuplicateApiKeyError` when
   * the id or the key hash is already stored, leaving the existing record untouched.
   * The id check must be atomic: `rotate` gives every rotation of a key the same
   * replacement id and relies on exactly one `create` of it succeeding, the others
   * rejecting with `DuplicateApiKeyError('id')`.
   */
  create(apiKey: ApiKey): Promise<ApiKey>;

  /**
   * Applies `changes` to the stored record in one atomic store operation and resolves
   * to the record as stored after it. Only the fields present in `changes` (own keys
   * whose value is not `undefined`) are written; every other field keeps whatever the
   * store holds at that instant, so concurrent updates of different fields both survive.
   * `version` goes up by exactly 1. Rejects with `ApiKeyNotFoundError` for an unknown id,
   * and with `VersionConflictError` (writing nothing) when `expectedVersion` is given and
   * differs from the stored version.
   * Revocation is sticky: when the stored `revokedAt` is set, a `revokedAt` change is
   * ignored (the first one stays); the rest of the changes still apply.
   */
  update(id: string, changes: ApiKeyChanges, options?: UpdateOptions): Promise<ApiKey>;

  /** Removes the record and every index entry for it. Idempotent: deleting a missing id resolves. */
  delete(id: string): Promise<void>;

  /**
   * The owner's records, ordered by `createdAt` then `id` ascending, streamed: an
   * implementation must not load every record of an owner into memory at once.
   */
  listByOwner(ownerId: string, options?: ListByOwnerOptions): AsyncIterable<ApiKey>;

  /**
   * Records a use of the key: sets `lastUsedAt = usedAt` only if it is `null` or
   * earlier than `staleBefore`, and touches no other field, so a usage write can never
   * undo a concurrent revoke or update. Resolves to whether it wrote. A missing id
   * resolves `false`.
   */
  recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean>;

  /** Optional: the number of records of an owner, for paginated listings. */
  countByOwner?(ownerId: string): Promise<number>;

  /**
   * Optional: the records whose `issuedById` is `issuerId` (any order), streamed. Used by
   * cascading revocation; without it the service falls back to scanning the issuer's
   * owner (which covers every key a self-service key can mint) and says so in the docs.
   */
  listByIssuer?(issuerId: string): AsyncIterable<ApiKey>;

  /**
   * Optional: deletes at most `limit` records with `expiresAt < expiredBefore` or
   * `revokedAt < revokedBefore` (each criterion only when given), with every index entry
   * of them, and resolves to how many it deleted. Calling again continues where it left
   * off (the deleted records are gone), so a caller loops until a call deletes fewer
   * than `limit`. One call is bounded in time and memory by `limit`. Without it,
   * `ApiKeyService.purge` throws `UnsupportedBackendOperationError`.
   */
  purge?(options: PurgeOptions): Promise<number>;

  /**
   * Optional, for pepper rotation: atomically, and only if the stored `keyHash` of `id`
   * equals `fromHash`, sets it to `toHash` and moves the hash index with it (`fromHash`
   * stops resolving, `toHash` resolves). Resolves `true` only for the call that made the
   * change; `false` for an unknown id or another stored hash (another instance upgraded
   * it first). Rejects with `DuplicateApiKeyError('keyHash')` when `toHash` belongs to
   * another record, changing nothing. Not a management write: `version` and `updatedAt`
   * stay as they are, so no ETag goes stale. Without it, keys hashed under a previous
   * pepper keep authenticating through the slower fallback and are never upgraded.
   */
  replaceHash?(id: string, fromHash: string, toHash: string): Promise<boolean>;

  /**
   * Optional: every owner's records matching the filters, newest first (`createdAt`
   * descending, then `id` descending), streamed, resuming after `options.after`. Backs
   * the admin listing across owners (`GET /api-keys?all=true`); without it that listing
   * answers 501 `list_all_unsupported` and nothing else changes.
   */
  listAll?(options: ListAllOptions): AsyncIterable<ApiKey>;
}

/** Injection token of the resolved backend; `@Inject(API_KEY_BACKEND)` or `@InjectApiKeyBackend()`. */
export const API_KEY_BACKEND = Symbol('API_KEY_BACKEND');
