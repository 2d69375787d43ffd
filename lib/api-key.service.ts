import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { API_AUTH_OPTIONS } from './api-auth.constants.js';
import type { ResolvedApiAuthOptions } from './api-auth.options.js';
import { toApiKeyView, type ApiKey, type ApiKeyMetadata, type ApiKeyView } from './api-key.interface.js';
import {
  ApiKeyAlreadyRotatedError,
  ApiKeyErrorCode,
  ApiKeyLimitReachedError,
  ApiKeyNotFoundError,
  ApiKeyValidationError,
  BackendUnavailableError,
  DuplicateApiKeyError,
  VersionConflictError,
  type AuthenticationFailureCode,
} from './api-key.errors.js';
import type { ApiKeyBackend, ApiKeyChanges } from './backends/backend.interface.js';
import { decodeCursor, encodeCursor } from './backends/cursor.js';
import { revokeIssuedKeys } from './management/cascade-revocation.js';
import { hasCachedLookup, type CachedLookup } from './cache/cached-lookup.interface.js';
import { environmentPrefix } from './policy/environment.js';
import { ApiKeyEventName } from './events/api-key.events.js';
import { LegacyKeyFormat } from './keys/legacy-key-format.js';
import { KeyFormat } from './keys/key-format.js';
import { KeyHasher, sameKeyHash } from './keys/key-hasher.js';
import { assertMetadataShape } from './management/metadata-shape.js';
import type { ApiKeyPolicy } from './policy/api-key-policy.js';
import { hasLimits, validatePolicy } from './policy/policy.validation.js';
import { replacementIdFor } from './internal/replacement-id.js';
import { ReplyDeadlines } from './internal/reply-deadlines.js';
import { redactedError } from './internal/safe-error-message.js';
import { UsageRecorder } from './usage/usage-recorder.js';

/** Input of {@link ApiKeyService.issue}. */
export interface IssueApiKeyInput {
  /** Who the key acts for. 1-255 characters. */
  ownerId: string;
  /** A label for humans. 1-200 characters. */
  name: string;
  /** Scopes granted; duplicates are dropped. Default none. */
  scopes?: string[];
  /** When the key stops working; must be in the future. Default never. */
  expiresAt?: Date | string | null;
  /** JSON-serialisable application data, bounded by `maxMetadataBytes`. */
  metadata?: ApiKeyMetadata;
  /**
   * The environment to mint the key in; one of `acceptEnvironments`. Default: the
   * module's `environment`.
   */
  environment?: string;
  /** Rate limits, quota and allowed addresses. Default none. */
  policy?: ApiKeyPolicy | null;
  /**
   * The key that mints this one (the management routes pass the caller's), so that
   * revoking it with `cascade` revokes this one too. Default `null`.
   */
  issuedById?: string | null;
}

/**
 * The key being imported by {@link ApiKeyService.import}: its plaintext (hashed here,
 * never stored), or the lowercase hex SHA-256 the other system stored, with an
 * optional display hint.
 */
export type ImportApiKeySource = { key: string } | { keyHash: string; hint?: string };

/** Input of {@link ApiKeyService.import}: what `issue` takes, plus the original creation time. */
export interface ImportApiKeyInput extends IssueApiKeyInput {
  /** When the other system created the key; must not be in the future. Default now. */
  createdAt?: Date | string;
}

/** Options of {@link ApiKeyService.update}. */
export interface UpdateApiKeyOptions {
  /**
   * Write only if the key is still at this `version` (what an earlier read returned);
   * otherwise reject with `VersionConflictError` and write nothing.
   */
  expectedVersion?: number;
}

/** Options of {@link ApiKeyService.revoke}. */
export interface RevokeApiKeyOptions {
  /**
   * Also revoke every key this one issued (`issuedById`), transitively. Default
   * `false` here; the management routes default to `true`.
   */
  cascade?: boolean;
  /**
   * Revoke only if the key is still at this `version`; otherwise reject with
   * `VersionConflictError`. The cascade is not pinned: issued keys are revoked as they are.
   */
  expectedVersion?: number;
}

/** Fields {@link ApiKeyService.update} may change. */
export interface UpdateApiKeyInput {
  name?: string;
  scopes?: string[];
  metadata?: ApiKeyMetadata;
  /** A future instant, or `null` to remove the expiry. */
  expiresAt?: Date | string | null;
  /** A new policy, or `null` to remove it. Replaces the whole policy. */
  policy?: ApiKeyPolicy | null;
}

/** Options of {@link ApiKeyService.rotate}. */
export interface RotateApiKeyOptions {
  /**
   * How long the old key keeps working, in milliseconds, so clients can switch over
   * without downtime. `0` ends it at once. It never extends the old key's own expiry.
   */
  gracePeriodMs?: number;
  /** Name of the new key. Default: the old key's name. */
  name?: string;
  /**
   * The key doing the rotation, recorded as the replacement's `issuedById` (the
   * management routes pass the caller's). Default: the old key's `issuedById`, so a
   * cascade from its issuer still reaches the replacement.
   */
  issuedById?: string | null;
}

/** A newly minted key: `key` is the plaintext, shown once and stored nowhere. */
export interface IssuedApiKey {
  key: string;
  apiKey: ApiKeyView;
}

/** Result of {@link ApiKeyService.rotate}. */
export interface RotatedApiKey extends IssuedApiKey {
  /** The old key's record, with its new `expiresAt`. */
  previous: ApiKeyView;
}

/** One page of an owner's keys. */
export interface ApiKeyPage {
  items: ApiKeyView[];
  /** Pass back as `cursor` for the next page; `null` on the last page. */
  nextCursor: string | null;
  /** Total number of the owner's keys. */
  total: number;
}

/** Outcome of {@link ApiKeyService.authenticate}: the key, or why it was refused. */
export type AuthenticationResult =
  | { ok: true; apiKey: ApiKeyView }
  | { ok: false; code: AuthenticationFailureCode }
  | { ok: false; code: typeof ApiKeyErrorCode.BackendUnavailable; error: unknown };

const INVALID = { ok: false, code: ApiKeyErrorCode.InvalidApiKey } as const;
const EXPIRED = { ok: false, code: ApiKeyErrorCode.ExpiredApiKey } as const;
const REVOKED = { ok: false, code: ApiKeyErrorCode.RevokedApiKey } as const;

function backendTimedOut(ms: number): BackendUnavailableError {
  return new BackendUnavailableError(`The API key backend did not answer within ${ms} ms.`);
}

/** Longest wait for the usage flush at shutdown when `verifyTimeoutMs` is 0. */
const SHUTDOWN_FLUSH_TIMEOUT_MS = 5_000;

/** `environmentOf` result for a key of a `legacyKeyPrefixes` prefix. */
const LEGACY = Symbol('legacy');
/** What a key's prefix says about its environment: a name, none, or a legacy import. */
type KeyEnvironment = string | null | typeof LEGACY;

const SCOPE_PATTERN = /^[\x21-\x7e]{1,128}$/;
const HASH_PATTERN = /^[0-9a-f]{64}$/;
const HINT_PATTERN = /^[^\x00-\x1f\x7f]{1,64}$/;
/** Most attempts of a write that retries on a version conflict (another writer moved the key). */
const MAX_CONFLICT_RETRIES = 10;

/** Fields each input accepts; anything else is refused, never silently dropped. */
const ISSUE_FIELDS = ['ownerId', 'name', 'scopes', 'expiresAt', 'metadata', 'environment', 'policy', 'issuedById'];
const IMPORT_FIELDS = [...ISSUE_FIELDS, 'createdAt'];
const IMPORT_SOURCE_FIELDS = ['key', 'keyHash', 'hint'];
const UPDATE_OPTION_FIELDS = ['expectedVersion'];
const REVOKE_OPTION_FIELDS = ['cascade', 'expectedVersion'];

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Issues, verifies and manages API keys over the configured backend. */
@Injectable()
export class ApiKeyService implements OnApplicationShutdown {
  /** The key format new keys are minted in (prefix, length, checksum): the module's `environment`. */
  readonly format: KeyFormat;
  /** Every accepted format, with its environment; the minting one first. */
  private readonly formats: ReadonlyArray<{ format: KeyFormat; environment: string | null }>;
  private readonly legacy: LegacyKeyFormat;
  private readonly hasher: KeyHasher;
  private readonly backend: ApiKeyBackend;
  private readonly usage: UsageRecorder;
  /** The backend's synchronous L1 lookup, when it has one (`CachedBackend`). */
  private readonly cached: CachedLookup | null;
  /** Backend lookups started and not yet settled, timed-out ones included (see `maxPendingLookups`). */
  private pendingLookups = 0;
  /** `verifyTimeoutMs` for lookups: one timer for all of them, not one each; `null` when 0. */
  private readonly lookupDeadlines: ReplyDeadlines | null;

  constructor(@Inject(API_AUTH_OPTIONS) private readonly options: ResolvedApiAuthOptions) {
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
  }

  /** Mints a key for `input.ownerId`. The plaintext is in the result and nowhere else. */
  async issue(input: IssueApiKeyInput): Promise<IssuedApiKey> {
    if (input == null || typeof input !== 'object') throw new ApiKeyValidationError('input', 'must be an object');
    assertKnownFields(input, ISSUE_FIELDS);
    const now = new Date();
    const fields = this.validateNewKey(input, now);
    await this.assertRoomFor(fields.ownerId);
    const issued = await this.mint({ ...fields, rotatedFromId: null }, now);
    this.emit(() => ({ type: ApiKeyEventName.Issued, apiKey: { ...issued.apiKey }, at: now }));
    return issued;
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
  async import(source: ImportApiKeySource, input: ImportApiKeyInput): Promise<ApiKeyView> {
    if (source == null || typeof source !== 'object') throw new ApiKeyValidationError('source', 'must be { key } or { keyHash }');
    if (input == null || typeof input !== 'object') throw new ApiKeyValidationError('input', 'must be an object');
    assertKnownFields(source, IMPORT_SOURCE_FIELDS);
    assertKnownFields(input, IMPORT_FIELDS);
    const now = new Date();
    let keyHash: string;
    let hint: string;
    let environment: string | null;
    if ('key' in source) {
      const key = source.key;
      const found = typeof key === 'string' ? this.environmentOf(key) : undefined;
      if (found === undefined) {
        throw new ApiKeyValidationError(
          'key',
          "is neither in this deployment's key format nor starts with a legacyKeyPrefixes prefix, so the guard would never accept it",
        );
      }
      if (found === LEGACY) {
        environment = this.validateEnvironment(input.environment);
        hint = this.legacy.hint(key);
      } else {
        if (input.environment !== undefined && input.environment !== found) {
          throw new ApiKeyValidationError('environment', "must match the environment in the key's prefix");
        }
        environment = found;
        hint = this.formatFor(found).hint(key);
      }
      keyHash = this.hasher.hash(key);
    } else {
      if (this.hasher.peppered) {
        throw new ApiKeyValidationError(
          'keyHash',
          'cannot be imported while a pepper is configured: keys are stored as HMAC-SHA256 with it, which a plain SHA-256 cannot be turned into',
        );
      }
      const hash = typeof source.keyHash === 'string' ? source.keyHash.toLowerCase() : '';
      if (!HASH_PATTERN.test(hash)) throw new ApiKeyValidationError('keyHash', 'must be a hex SHA-256 digest (64 characters)');
      if (source.hint !== undefined && (typeof source.hint !== 'string' || !HINT_PATTERN.test(source.hint))) {
        throw new ApiKeyValidationError('hint', 'must be 1-64 printable characters');
      }
      keyHash = hash;
      hint = source.hint ?? '(imported)';
      environment = this.validateEnvironment(input.environment);
    }
    const createdAt = input.createdAt === undefined ? now : this.validatePast('createdAt', input.createdAt, now);
    const fields = this.validateNewKey({ ...input, environment: undefined }, now);
    const record: ApiKey = {
      id: randomUUID(),
      keyHash,
      hint,
      ...fields,
      environment,
      rotatedFromId: null,
      createdAt,
      updatedAt: now,
      revokedAt: null,
      lastUsedAt: null,
      version: 1,
    };
    await this.assertRoomFor(record.ownerId);
    const stored = await this.backend.create(record);
    this.emit(() => ({ type: ApiKeyEventName.Imported, apiKey: toApiKeyView(stored), at: now }));
    return toApiKeyView(stored);
  }

  /**
   * The key's record when `key` is a valid, unexpired, unrevoked key; otherwise
   * `null`. Throws `BackendUnavailableError` when the store cannot answer, so `null`
   * always means "not a valid key".
   */
  async verify(key: string): Promise<ApiKeyView | null> {
    const result = await this.authenticate(key);
    if (result.ok) return result.apiKey;
    if (result.code === ApiKeyErrorCode.BackendUnavailable) {
      throw result.error instanceof BackendUnavailableError
        ? result.error
        : new BackendUnavailableError(undefined, { cause: redactedError(result.error) });
    }
    return null;
  }

  /**
   * Verification with the reason for a refusal; what the guard calls. Never throws:
   * a backend failure or timeout comes back as `backend_unavailable`.
   */
  async authenticate(key: string): Promise<AuthenticationResult> {
    return this.check(key);
  }

  /**
   * `authenticate` without a promise when it can be: synchronous when the answer is
   * offline (a malformed key) or in memory (an L1 or `MemoryBackend` hit), a promise
   * only when the backend must be asked. The guard uses it so a cached key costs no
   * promise and no microtask hops.
   */
  check(key: string): AuthenticationResult | Promise<AuthenticationResult> {
    // Offline checks first: malformed input never costs a hash or a lookup.
    const environment = this.environmentOf(key);
    if (environment === undefined) return INVALID;
    const keyHash = this.hasher.hash(key);
    // A warm L1 answers synchronously: no timeout race, no timer, no copy of the record.
    const hit = this.peek(keyHash);
    if (hit === null) return INVALID;
    // The cached view is frozen and shared by every hit.
    if (hit !== undefined) return this.judge(hit.record, environment, hit.view);
    return this.lookupAndJudge(keyHash, environment);
  }

  /**
   * Asks the backend, within `verifyTimeoutMs`. One promise, settled by whichever comes
   * first, the backend or the deadline: no async frame, no race, no timer per lookup.
   */
  private lookupAndJudge(keyHash: string, environment: KeyEnvironment): AuthenticationResult | Promise<AuthenticationResult> {
    const max = this.options.maxPendingLookups;
    if (max !== 0 && this.pendingLookups >= max) {
      // The store is not keeping up; another lookup would only add to what it holds.
      const error = new BackendUnavailableError(`${max} API key lookups are pending; refusing without asking the backend.`);
      return { ok: false, code: ApiKeyErrorCode.BackendUnavailable, error };
    }
    let lookup: Promise<ApiKey | null>;
    try {
      lookup = this.backend.getByHash(keyHash);
    } catch (error) {
      return { ok: false, code: ApiKeyErrorCode.BackendUnavailable, error };
    }
    // A lookup counts until the backend settles it: the deadline answers the client, but
    // a hung store still holds the lookup.
    this.pendingLookups++;
    const deadlines = this.lookupDeadlines;
    return new Promise<AuthenticationResult>((resolve, reject) => {
      let late = false;
      const deadline = deadlines?.start((error) => {
        late = true;
        resolve({ ok: false, code: ApiKeyErrorCode.BackendUnavailable, error });
      });
      lookup.then(
        (record) => {
          this.pendingLookups--;
          // Already answered 503: a late record must not count as a use of the key.
          if (late) return;
          if (deadline !== undefined) deadlines!.clear(deadline);
          try {
            resolve(this.judgeLookup(record, keyHash, environment));
          } catch (error) {
            reject(error);
          }
        },
        (error: unknown) => {
          this.pendingLookups--;
          if (deadline !== undefined) deadlines!.clear(deadline);
          resolve({ ok: false, code: ApiKeyErrorCode.BackendUnavailable, error });
        },
      );
    });
  }

  private judgeLookup(record: Readonly<ApiKey> | null, keyHash: string, environment: KeyEnvironment): AuthenticationResult {
    // A backend that returns the wrong record must not let anyone in. (The L1 files a
    // record only under its own hash, so a hit needs no such check.)
    if (!record || !sameKeyHash(record.keyHash, keyHash)) return INVALID;
    return this.judge(record, environment, undefined);
  }

  private judge(record: Readonly<ApiKey>, environment: KeyEnvironment, view: ApiKeyView | undefined): AuthenticationResult {
    // The prefix named the environment; a record of another one (copied between
    // deployments' stores, say) is not this key's.
    if (environment === LEGACY ? !this.options.environments.includes(record.environment ?? null) : (record.environment ?? null) !== environment) {
      return INVALID;
    }
    if (record.revokedAt !== null) return REVOKED;
    const now = Date.now();
    if (record.expiresAt !== null && record.expiresAt.getTime() <= now) return EXPIRED;
    this.usage.record(record.id, record.lastUsedAt, now);
    return { ok: true, apiKey: view ?? toApiKeyView(record as ApiKey) };
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
    const limit = options.limit ?? 50;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
      throw new ApiKeyValidationError('limit', 'must be an integer from 1 to 1000');
    }
    let after;
    if (options.cursor) {
      after = decodeCursor(options.cursor);
      if (!after) throw new ApiKeyValidationError('cursor', 'is not a cursor returned by this API');
    }
    const items: ApiKeyView[] = [];
    let more = false;
    for await (const record of this.backend.listByOwner(ownerId, { after, limit: limit + 1 })) {
      if (items.length === limit) {
        more = true;
        break;
      }
      items.push(toApiKeyView(record));
    }
    const last = items.at(-1);
    return {
      items,
      nextCursor: more && last ? encodeCursor(last) : null,
      total: await this.countByOwner(ownerId),
    };
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
  async update(id: string, changes: UpdateApiKeyInput, options: UpdateApiKeyOptions = {}): Promise<ApiKeyView> {
    if (changes == null || typeof changes !== 'object' || Array.isArray(changes)) {
      throw new ApiKeyValidationError('changes', 'must be an object');
    }
    assertKnownFields(changes, UPDATABLE);
    const given = UPDATABLE.filter((field) => changes[field] !== undefined);
    if (given.length === 0) throw new ApiKeyValidationError('changes', `must set at least one of ${UPDATABLE.join(', ')}`);
    const expectedVersion = this.validateUpdateOptions(options);
    requireIdShape(id);
    const now = new Date();
    const write: ApiKeyChanges = { updatedAt: now };
    if (changes.name !== undefined) write.name = this.validateName(changes.name);
    if (changes.scopes !== undefined) write.scopes = this.validateScopes(changes.scopes);
    if (changes.metadata !== undefined) write.metadata = this.validateMetadata(changes.metadata);
    if (changes.expiresAt !== undefined) write.expiresAt = this.validateExpiry(changes.expiresAt, now);
    const policy = changes.policy === undefined ? undefined : validatePolicy(changes.policy);
    let updated: ApiKey;
    if (policy === undefined || policy === null || policy.counterKey !== undefined || !hasLimits(policy)) {
      if (policy !== undefined) write.policy = policy;
      updated = await this.writeChanges(id, write, expectedVersion);
    } else {
      // The new policy keeps the stored one's counter key. That key is fixed when a key
      // is minted (rotation, self-service issue) and only code naming another changes
      // it, so the read does not pin the write: pinned, a key whose holder writes its
      // metadata in a loop could starve an admin's policy change.
      const current = await this.require(id);
      if (expectedVersion !== undefined && (current.version ?? 1) !== expectedVersion) {
        throw new VersionConflictError(shownId(id), expectedVersion, current.version ?? 1);
      }
      write.policy = keepCounterKey(policy, current.policy);
      updated = await this.writeChanges(id, write, expectedVersion);
    }
    this.emit(() => ({ type: ApiKeyEventName.Updated, apiKey: toApiKeyView(updated), changed: given, at: now }));
    return toApiKeyView(updated);
  }

  /**
   * Revokes the key for good (soft delete). Revoking twice keeps the first
   * `revokedAt` and emits once. With `cascade`, also revokes every key it issued
   * (`issuedById`), transitively, each with an `api-key.revoked` event naming
   * `cascadeOf`; a backend without `listByIssuer` is searched through the issuer's
   * owner's keys, which hold every key a self-service key can mint.
   */
  async revoke(id: string, options: RevokeApiKeyOptions = {}): Promise<ApiKeyView> {
    if (options == null || typeof options !== 'object') throw new ApiKeyValidationError('options', 'must be an object');
    assertKnownFields(options, REVOKE_OPTION_FIELDS);
    if (options.cascade !== undefined && typeof options.cascade !== 'boolean') {
      throw new ApiKeyValidationError('cascade', 'must be a boolean');
    }
    const expectedVersion = this.validateUpdateOptions({ expectedVersion: options.expectedVersion });
    const record = await this.require(id);
    if (expectedVersion !== undefined && expectedVersion !== (record.version ?? 1)) {
      throw new VersionConflictError(shownId(record.id), expectedVersion, record.version ?? 1);
    }
    const revoked = await this.revokeOne(record, undefined, expectedVersion !== undefined);
    if (options.cascade === true) await revokeIssuedKeys(this.backend, record, (key) => this.revokeOne(key, record.id));
    return toApiKeyView(revoked);
  }

  /**
   * Sets `revokedAt` unless it is set. Pinned to the version read, so that of racing
   * revokes exactly one writes and emits; a conflict re-reads (done if another revoke
   * won). Under a storm of other writes the pin could lose forever, and a revoke must
   * never fail for that: after `MAX_CONFLICT_RETRIES` it writes unpinned (the store
   * keeps the first `revokedAt`) and emits if its own `revokedAt` is the one stored.
   */
  private async revokeOne(record: ApiKey, cascadeOf: string | undefined, pinned = false): Promise<ApiKey> {
    let current = record;
    for (let attempt = 0; current.revokedAt === null; attempt++) {
      const now = new Date();
      const unpinned = !pinned && attempt >= MAX_CONFLICT_RETRIES;
      let revoked: ApiKey;
      try {
        const options = unpinned ? undefined : { expectedVersion: current.version ?? 1 };
        revoked = await this.backend.update(current.id, { revokedAt: now, updatedAt: now }, options);
      } catch (error) {
        if (pinned || !(error instanceof VersionConflictError)) throw this.shownError(error, current.id);
        current = await this.require(current.id);
        continue;
      }
      if (!unpinned || revoked.revokedAt?.getTime() === now.getTime()) {
        this.emit(() => ({
          type: ApiKeyEventName.Revoked,
          apiKey: toApiKeyView(revoked),
          at: now,
          ...(cascadeOf === undefined ? {} : { cascadeOf }),
        }));
      }
      return revoked;
    }
    return current;
  }

  /** One backend `update`, with errors that show only a minted id. */
  private async writeChanges(id: string, changes: ApiKeyChanges, expectedVersion: number | undefined): Promise<ApiKey> {
    try {
      return await this.backend.update(id, changes, expectedVersion === undefined ? undefined : { expectedVersion });
    } catch (error) {
      throw this.shownError(error, id);
    }
  }

  /**
   * A write built from the stored record, pinned to its version. With the caller's
   * `expectedVersion` a conflict is theirs to handle; without one, a conflict means
   * another writer got in between, so read again and rebuild (bounded).
   */
  private async withConflictRetry(
    id: string,
    expectedVersion: number | undefined,
    build: (current: ApiKey) => ApiKeyChanges | null,
    initial?: ApiKey,
  ): Promise<ApiKey> {
    for (let attempt = 0; ; attempt++) {
      const current = attempt === 0 && initial !== undefined ? initial : await this.require(id);
      const version = current.version ?? 1;
      if (expectedVersion !== undefined && version !== expectedVersion) {
        throw new VersionConflictError(shownId(id), expectedVersion, version);
      }
      const changes = build(current);
      if (changes === null) return current;
      try {
        return await this.backend.update(id, changes, { expectedVersion: version });
      } catch (error) {
        if (expectedVersion !== undefined || !(error instanceof VersionConflictError) || attempt >= MAX_CONFLICT_RETRIES) {
          throw this.shownError(error, id);
        }
      }
    }
  }

  /** A backend's not-found or conflict error again, naming only an id shaped like a minted one. */
  private shownError(error: unknown, id: string): unknown {
    if (error instanceof ApiKeyNotFoundError) return new ApiKeyNotFoundError(shownId(id));
    if (error instanceof VersionConflictError) return new VersionConflictError(shownId(id), error.expectedVersion, error.actualVersion);
    return error;
  }

  private validateUpdateOptions(options: UpdateApiKeyOptions): number | undefined {
    if (options == null || typeof options !== 'object') throw new ApiKeyValidationError('options', 'must be an object');
    assertKnownFields(options, UPDATE_OPTION_FIELDS);
    const expected = options.expectedVersion;
    if (expected !== undefined && (!Number.isSafeInteger(expected) || expected < 1)) {
      throw new ApiKeyValidationError('expectedVersion', 'must be a positive integer');
    }
    return expected;
  }

  /**
   * Removes the record entirely. Idempotent. The key's rate-limit and quota counters
   * stay where they are (see `RateLimiter.deleteCounters` for why): windowed counters
   * and refilling quotas expire as they would have anyway, and a quota that never
   * refills keeps its spent credits for any key that still counts against it,
   * including one whose issue or rotation raced this delete.
   */
  async delete(id: string): Promise<void> {
    // The event names the owner, which only the record knows; without listeners, no read.
    const existing = this.options.emitEvent !== null ? await this.backend.getById(id) : null;
    await this.backend.delete(id);
    if (!existing) return;
    this.emit(() => ({ type: ApiKeyEventName.Deleted, id: existing.id, ownerId: existing.ownerId, at: new Date() }));
  }

  /**
   * Issues a replacement with the same owner, scopes, metadata and expiry, linked by
   * `rotatedFromId`, and lets the old key live for `gracePeriodMs` more.
   *
   * A key is rotated once. Its replacement's id is derived from its own, so the store
   * keeps exactly one replacement however many rotations of the key race, on however
   * many instances: every other one, and any later one, throws
   * `ApiKeyAlreadyRotatedError`, mints nothing and leaves the old key as the winner set
   * it. Deleting the replacement deletes that memory: an old key still inside its grace
   * period can then be rotated again (never extending the grace period).
   */
  async rotate(id: string, options: RotateApiKeyOptions = {}): Promise<RotatedApiKey> {
    const grace = options.gracePeriodMs ?? 0;
    if (!Number.isSafeInteger(grace) || grace < 0) {
      throw new ApiKeyValidationError('gracePeriodMs', 'must be a non-negative integer of milliseconds');
    }
    const issuedBy = options.issuedById === undefined ? undefined : validateIssuedById(options.issuedById);
    const old = await this.require(id);
    const now = new Date();
    const replacementId = replacementIdFor(old.id);
    const revoked = old.revokedAt !== null;
    if (revoked || (old.expiresAt !== null && old.expiresAt <= now)) {
      // A rotation without a grace period ends the old key itself: one that lost the
      // race to it reads an expired key, and must say that the key was rotated.
      const replacement = await this.backend.getById(replacementId);
      if (replacement?.rotatedFromId === old.id) throw new ApiKeyAlreadyRotatedError(shownId(old.id), replacementId);
      throw new ApiKeyValidationError('id', revoked ? 'a revoked key cannot be rotated' : 'an expired key cannot be rotated');
    }
    await this.assertRoomFor(old.ownerId);
    let issued: IssuedApiKey;
    try {
      issued = await this.mint(
        {
          ownerId: old.ownerId,
          name: options.name === undefined ? old.name : this.validateName(options.name),
          scopes: old.scopes,
          metadata: old.metadata,
          expiresAt: old.expiresAt,
          rotatedFromId: old.id,
          // A key imported under an environment this deployment no longer accepts gets the current one.
          environment: this.options.environments.includes(old.environment ?? null) ? (old.environment ?? null) : this.options.environment,
          // The replacement shares the old key's counters: rotating must not buy fresh credits.
          policy: old.policy && hasLimits(old.policy) ? { ...old.policy, counterKey: old.policy.counterKey ?? old.id } : old.policy,
          issuedById: issuedBy === undefined ? (old.issuedById ?? null) : issuedBy,
        },
        now,
        replacementId,
      );
    } catch (error) {
      // Another rotation stored the replacement first. This one must not touch the old
      // key: the winner has set (or is setting) its grace period.
      if (error instanceof DuplicateApiKeyError && error.field === 'id') {
        throw new ApiKeyAlreadyRotatedError(shownId(old.id), replacementId);
      }
      throw error;
    }
    // The grace period starts once the replacement exists, so a slow store does not
    // eat into the time clients have to switch over.
    const graceEnd = new Date(Date.now() + grace);
    let previous: ApiKey;
    try {
      // Only `expiresAt` is written, pinned to the version read: a concurrent update of
      // the old key (scopes, policy) is kept, and a moved expiry is re-read, never undone.
      previous = await this.withConflictRetry(
        old.id,
        undefined,
        ({ expiresAt }) => (expiresAt !== null && expiresAt <= graceEnd ? null : { expiresAt: graceEnd, updatedAt: now }),
        old,
      );
    } catch (error) {
      // The caller gets this error, not the new plaintext, so nobody can use the
      // replacement; left stored, it would refuse every retry as "already rotated".
      await this.backend.delete(replacementId).catch(() => undefined);
      throw error;
    }
    this.emit(() => ({ type: ApiKeyEventName.Rotated, apiKey: { ...issued.apiKey }, previous: toApiKeyView(previous), at: now }));
    return { ...issued, previous: toApiKeyView(previous) };
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
    await this.withTimeout(this.flushUsage(), ms).catch(() => undefined);
  }

  /** Stores a new key under `id` (default a random UUID). */
  private async mint(
    fields: Pick<ApiKey, 'ownerId' | 'name' | 'scopes' | 'metadata' | 'expiresAt' | 'rotatedFromId' | 'environment' | 'policy' | 'issuedById'>,
    now: Date,
    id?: string,
  ): Promise<IssuedApiKey> {
    const format = this.formatFor(fields.environment);
    // A collision of 256-bit secrets is not going to happen; one retry covers a buggy RNG shim.
    for (let attempt = 0; ; attempt++) {
      const key = format.generate();
      const record: ApiKey = {
        id: id ?? randomUUID(),
        keyHash: this.hasher.hash(key),
        hint: format.hint(key),
        ...fields,
        createdAt: now,
        updatedAt: now,
        revokedAt: null,
        lastUsedAt: null,
        version: 1,
      };
      try {
        const stored = await this.backend.create(record);
        return { key, apiKey: toApiKeyView(stored) };
      } catch (error) {
        // A given id that is taken stays taken: only a fresh key (or random id) can help.
        if (attempt === 0 && error instanceof DuplicateApiKeyError && (id === undefined || error.field === 'keyHash')) continue;
        if (!(error instanceof DuplicateApiKeyError)) await this.removeIfStored(record);
        throw error;
      }
    }
  }

  /**
   * After a `create` that failed in a way that may still have written (a timeout, a
   * lost connection), removes the record if it was stored: the caller gets the error,
   * not the plaintext, so nobody could ever use it, and a rotation's replacement left
   * behind would refuse every retry as "already rotated". Only this attempt's record
   * goes (same id and key hash), never a concurrent rotation's. Best effort, bounded
   * by `verifyTimeoutMs`: a store that is down keeps what it has.
   */
  private async removeIfStored(record: ApiKey): Promise<void> {
    try {
      const stored = await this.withTimeout(this.backend.getById(record.id));
      if (stored !== null && sameKeyHash(stored.keyHash, record.keyHash)) await this.withTimeout(this.backend.delete(record.id));
    } catch {
      // Nothing more to do; the create's own error is what the caller gets.
    }
  }

  /** Refuses one more key for an owner at `maxKeysPerOwner` (a count, then the write: see the option). */
  private async assertRoomFor(ownerId: string): Promise<void> {
    const max = this.options.maxKeysPerOwner;
    if (max !== null && (await this.countByOwner(ownerId)) >= max) throw new ApiKeyLimitReachedError(max);
  }

  private async require(id: string): Promise<ApiKey> {
    // Only an id shaped like the ones this service mints is echoed in the error: a
    // caller who passes a plaintext key where an id belongs must not see it in a 404
    // body or a log line.
    requireIdShape(id);
    const record = await this.backend.getById(id);
    if (!record) throw new ApiKeyNotFoundError(shownId(id));
    return record;
  }

  /**
   * The environment named by the key's prefix (`null` without environments), `LEGACY`
   * for an imported key of a legacy prefix, or `undefined` when the key is none of
   * these. Offline: no hash, no lookup.
   */
  private environmentOf(key: string): string | null | typeof LEGACY | undefined {
    const formats = this.formats;
    for (let i = 0; i < formats.length; i++) {
      if (formats[i]!.format.matches(key)) return formats[i]!.environment;
    }
    return typeof key === 'string' && this.legacy.matches(key) ? LEGACY : undefined;
  }

  private formatFor(environment: string | null): KeyFormat {
    return (this.formats.find((f) => f.environment === environment) ?? this.formats[0]!).format;
  }

  /** Builds an event only when someone listens. */
  private emit(build: () => Parameters<NonNullable<ResolvedApiAuthOptions['emitEvent']>>[0]): void {
    const sink = this.options.emitEvent;
    if (sink !== null) sink(build());
  }

  /** The validated fields of a key about to be minted or imported. */
  private validateNewKey(input: IssueApiKeyInput, now: Date) {
    return {
      ownerId: this.validateOwnerId(input.ownerId),
      name: this.validateName(input.name),
      scopes: this.validateScopes(input.scopes ?? []),
      metadata: this.validateMetadata(input.metadata ?? {}),
      expiresAt: this.validateExpiry(input.expiresAt ?? null, now),
      environment: this.validateEnvironment(input.environment),
      policy: validatePolicy(input.policy),
      issuedById: validateIssuedById(input.issuedById ?? null),
    };
  }

  private validateEnvironment(environment: unknown): string | null {
    if (environment === undefined) return this.options.environment;
    if (typeof environment !== 'string' || !this.options.environments.includes(environment)) {
      throw new ApiKeyValidationError('environment', 'must be one of the environments this deployment accepts');
    }
    return environment;
  }

  private validatePast(field: string, value: unknown, now: Date): Date {
    const date = value instanceof Date ? new Date(value) : typeof value === 'string' ? new Date(value) : null;
    if (!date || Number.isNaN(date.getTime())) throw new ApiKeyValidationError(field, 'must be a Date or an ISO 8601 string');
    if (date > now) throw new ApiKeyValidationError(field, 'must not be in the future');
    return date;
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

  /** For the rare waits (a delete's counters, the shutdown flush); lookups use `lookupDeadlines`. */
  private withTimeout<T>(promise: Promise<T>, ms = this.options.verifyTimeoutMs): Promise<T> {
    if (ms === 0) return promise;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(backendTimedOut(ms)), ms);
      timer.unref();
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  private validateOwnerId(ownerId: unknown): string {
    if (typeof ownerId !== 'string' || ownerId.trim().length === 0) {
      throw new ApiKeyValidationError('ownerId', 'must be a non-empty string');
    }
    if (ownerId.length > 255) throw new ApiKeyValidationError('ownerId', 'must be at most 255 characters');
    return ownerId;
  }

  private validateName(name: unknown): string {
    if (typeof name !== 'string' || name.trim().length === 0) {
      throw new ApiKeyValidationError('name', 'must be a non-empty string');
    }
    if (name.length > 200) throw new ApiKeyValidationError('name', 'must be at most 200 characters');
    return name;
  }

  private validateScopes(scopes: unknown): string[] {
    if (!Array.isArray(scopes)) throw new ApiKeyValidationError('scopes', 'must be an array of strings');
    if (scopes.length > this.options.maxScopes) {
      throw new ApiKeyValidationError('scopes', `must hold at most ${this.options.maxScopes} scopes`);
    }
    for (const scope of scopes) {
      if (typeof scope !== 'string' || !SCOPE_PATTERN.test(scope)) {
        throw new ApiKeyValidationError('scopes', 'each scope must be 1-128 printable ASCII characters without spaces');
      }
    }
    return [...new Set(scopes as string[])];
  }

  private validateMetadata(metadata: unknown): ApiKeyMetadata {
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new ApiKeyValidationError('metadata', 'must be a plain object');
    }
    assertMetadataShape(metadata, this.options.maxMetadataBytes);
    let json: string;
    try {
      json = JSON.stringify(metadata);
    } catch {
      throw new ApiKeyValidationError('metadata', 'must be JSON-serialisable');
    }
    // `toJSON` decides what is stored (a Date becomes a string, or nothing at all), so
    // the serialised form, not the input, must be a plain object.
    if (typeof json !== 'string' || !json.startsWith('{')) {
      throw new ApiKeyValidationError('metadata', 'must be a plain object');
    }
    if (Buffer.byteLength(json, 'utf8') > this.options.maxMetadataBytes) {
      throw new ApiKeyValidationError('metadata', `must be at most ${this.options.maxMetadataBytes} bytes as JSON`);
    }
    // The JSON round trip drops functions and undefined, exactly what a store would keep.
    return JSON.parse(json) as ApiKeyMetadata;
  }

  private validateExpiry(value: unknown, now: Date): Date | null {
    if (value === null) return null;
    const date = value instanceof Date ? new Date(value) : typeof value === 'string' ? new Date(value) : null;
    if (!date || Number.isNaN(date.getTime())) {
      throw new ApiKeyValidationError('expiresAt', 'must be a Date or an ISO 8601 string');
    }
    if (date <= now) throw new ApiKeyValidationError('expiresAt', 'must be in the future');
    return date;
  }
}

/** Fields of {@link UpdateApiKeyInput}, named in `api-key.updated` events. */
const UPDATABLE = ['name', 'scopes', 'metadata', 'expiresAt', 'policy'] as const;

/**
 * A new policy keeps the counter key of the one it replaces unless it names its own:
 * raising a rotated key's limit must not also hand it a fresh budget.
 */
function keepCounterKey(next: ApiKeyPolicy | null, current: ApiKeyPolicy | null): ApiKeyPolicy | null {
  if (next === null || next.counterKey !== undefined || current?.counterKey === undefined || !hasLimits(next)) return next;
  return { ...next, counterKey: current.counterKey };
}

/** Refuses an id no store could hold, before any store call; the error shows only a minted-shaped id. */
function requireIdShape(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 64) throw new ApiKeyNotFoundError(shownId(id));
}

/** `issuedById` as given: `null`, or a key id (1-64 characters). */
function validateIssuedById(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) {
    throw new ApiKeyValidationError('issuedById', 'must be a key id (1-64 characters) or null');
  }
  return value;
}

/**
 * Refuses any own field of `input` not in `allowed`, naming it: a misspelt or foreign
 * field (`expiresIn`, `scope`) silently dropped would mint a key unlike the one asked for.
 */
function assertKnownFields(input: object, allowed: readonly string[]): void {
  for (const field of Object.keys(input)) {
    if (!allowed.includes(field)) throw new ApiKeyValidationError(field, 'is not a known field');
  }
}

/** `id` as errors may show it: only ids shaped like the ones this service mints. */
function shownId(id: unknown): string {
  return typeof id === 'string' && UUID_PATTERN.test(id) ? id : '(redacted)';
}
