import { randomUUID } from 'node:crypto';
import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import { toApiKeyView, type ApiKey, type ApiKeyView } from '../api-key.interface.js';
import {
  ApiKeyAlreadyRotatedError,
  ApiKeyLimitReachedError,
  ApiKeyNotFoundError,
  ApiKeyValidationError,
  DuplicateApiKeyError,
  VersionConflictError,
} from '../api-key.errors.js';
import type { ApiKeyBackend, ApiKeyChanges } from '../backends/backend.interface.js';
import { ApiKeyEventName } from '../events/api-key.events.js';
import { replacementIdFor } from '../internal/replacement-id.js';
import type { KeyFormat } from '../keys/key-format.js';
import { sameKeyHash, type KeyHasher } from '../keys/key-hasher.js';
import type { LegacyKeyFormat } from '../keys/legacy-key-format.js';
import type { ApiKeyPolicy } from '../policy/api-key-policy.js';
import { hasLimits, validatePolicy } from '../policy/policy.validation.js';
import { backendTimedOut, LEGACY, type KeyEnvironment } from '../verification/key-verifier.js';
import { revokeIssuedKeys } from './cascade-revocation.js';
import { resolveKeyDefaults, withDefaults, type KeyDefaults } from './key-defaults.js';
import { assertWithinMaxLifetime, expiryForNewKey, expiryForReplacement } from './key-lifetime.js';
import {
  assertKnownFields,
  HASH_PATTERN,
  HINT_PATTERN,
  IMPORT_FIELDS,
  IMPORT_SOURCE_FIELDS,
  ISSUE_FIELDS,
  requireIdShape,
  REVOKE_OPTION_FIELDS,
  shownId,
  validateEnvironment,
  validateExpiry,
  validateIssuedById,
  validateMetadata,
  validateName,
  validateNewKey,
  validatePast,
  validateScopes,
  validateUpdateOptions,
} from './key-input.validation.js';
import type {
  ImportApiKeyInput,
  ImportApiKeySource,
  IssueApiKeyInput,
  IssuedApiKey,
  RevokeApiKeyOptions,
  RotateApiKeyOptions,
  RotatedApiKey,
  UpdateApiKeyInput,
  UpdateApiKeyOptions,
} from './key-inputs.js';

/** Most attempts of a write that retries on a version conflict (another writer moved the key). */
const MAX_CONFLICT_RETRIES = 10;

/** What the operations need from the verifier they share a key format and hasher with. */
export interface KeyOperationsContext {
  readonly formats: ReadonlyArray<{ format: KeyFormat; environment: string | null }>;
  readonly legacy: LegacyKeyFormat;
  readonly hasher: KeyHasher;
  environmentOf(key: string): KeyEnvironment | undefined;
  countByOwner(ownerId: string): Promise<number>;
}

/**
 * The write side of {@link ApiKeyService}: minting, importing, updating, revoking,
 * deleting and rotating keys, with version-conflict retries and events. The service's
 * public verbs document the behaviour and delegate here.
 */
export class KeyOperations {
  private readonly backend: ApiKeyBackend;
  private readonly formats: KeyOperationsContext['formats'];
  private readonly legacy: LegacyKeyFormat;
  private readonly hasher: KeyHasher;
  /** `defaultScopes` / `defaultPolicy`, validated here since their checks are the key inputs'. */
  readonly defaults: KeyDefaults;

  constructor(
    private readonly options: ResolvedApiAuthOptions,
    private readonly context: KeyOperationsContext,
  ) {
    this.backend = options.backend;
    this.formats = context.formats;
    this.legacy = context.legacy;
    this.hasher = context.hasher;
    this.defaults = resolveKeyDefaults(options.defaultScopes ?? undefined, options.defaultPolicy ?? undefined, options.maxScopes);
  }

  /** See {@link ApiKeyService.issue}. */
  async issue(input: IssueApiKeyInput): Promise<IssuedApiKey> {
    if (input == null || typeof input !== 'object') throw new ApiKeyValidationError('input', 'must be an object');
    assertKnownFields(input, ISSUE_FIELDS);
    const now = new Date();
    const fields = validateNewKey(withDefaults(input, this.defaults), now, this.options);
    fields.expiresAt = expiryForNewKey(input.expiresAt === undefined ? undefined : fields.expiresAt, now, this.options.keyLifetime);
    await this.assertRoomFor(fields.ownerId);
    const issued = await this.mint({ ...fields, rotatedFromId: null }, now);
    this.emit(() => ({ type: ApiKeyEventName.Issued, apiKey: { ...issued.apiKey }, at: now }));
    return issued;
  }

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
        environment = validateEnvironment(input.environment, this.options);
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
      environment = validateEnvironment(input.environment, this.options);
    }
    const createdAt = input.createdAt === undefined ? now : validatePast('createdAt', input.createdAt, now);
    const fields = validateNewKey(withDefaults({ ...input, environment: undefined }, this.defaults), now, this.options);
    fields.expiresAt = expiryForNewKey(input.expiresAt === undefined ? undefined : fields.expiresAt, now, this.options.keyLifetime);
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

  async update(id: string, changes: UpdateApiKeyInput, options: UpdateApiKeyOptions = {}): Promise<ApiKeyView> {
    if (changes == null || typeof changes !== 'object' || Array.isArray(changes)) {
      throw new ApiKeyValidationError('changes', 'must be an object');
    }
    assertKnownFields(changes, UPDATABLE);
    const given = UPDATABLE.filter((field) => changes[field] !== undefined);
    if (given.length === 0) throw new ApiKeyValidationError('changes', `must set at least one of ${UPDATABLE.join(', ')}`);
    const expectedVersion = validateUpdateOptions(options);
    requireIdShape(id);
    const now = new Date();
    const write: ApiKeyChanges = { updatedAt: now };
    if (changes.name !== undefined) write.name = validateName(changes.name);
    if (changes.scopes !== undefined) write.scopes = validateScopes(changes.scopes, this.options.maxScopes);
    if (changes.metadata !== undefined) write.metadata = validateMetadata(changes.metadata, this.options.maxMetadataBytes);
    if (changes.expiresAt !== undefined) {
      write.expiresAt = validateExpiry(changes.expiresAt, now);
      assertWithinMaxLifetime(write.expiresAt, now, this.options.keyLifetime);
    }
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

  async revoke(id: string, options: RevokeApiKeyOptions = {}): Promise<ApiKeyView> {
    if (options == null || typeof options !== 'object') throw new ApiKeyValidationError('options', 'must be an object');
    assertKnownFields(options, REVOKE_OPTION_FIELDS);
    if (options.cascade !== undefined && typeof options.cascade !== 'boolean') {
      throw new ApiKeyValidationError('cascade', 'must be a boolean');
    }
    const expectedVersion = validateUpdateOptions({ expectedVersion: options.expectedVersion });
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

  async delete(id: string): Promise<void> {
    // The event names the owner, which only the record knows; without listeners, no read.
    const existing = this.options.emitEvent !== null ? await this.backend.getById(id) : null;
    await this.backend.delete(id);
    if (!existing) return;
    this.emit(() => ({ type: ApiKeyEventName.Deleted, id: existing.id, ownerId: existing.ownerId, at: new Date() }));
  }

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
          name: options.name === undefined ? old.name : validateName(options.name),
          scopes: old.scopes,
          metadata: old.metadata,
          // Rotation takes no expiry, so it cannot be refused for one: under keyLifetime.maxMs
          // the replacement's is capped, which brings keys from before the limit within it.
          expiresAt: expiryForReplacement(old.expiresAt, now, this.options.keyLifetime),
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

  async require(id: string): Promise<ApiKey> {
    // Only an id shaped like the ones this service mints is echoed in the error: a
    // caller who passes a plaintext key where an id belongs must not see it in a 404
    // body or a log line.
    requireIdShape(id);
    const record = await this.backend.getById(id);
    if (!record) throw new ApiKeyNotFoundError(shownId(id));
    return record;
  }

  private formatFor(environment: string | null): KeyFormat {
    return (this.formats.find((f) => f.environment === environment) ?? this.formats[0]!).format;
  }

  /** Builds an event only when someone listens. */
  private emit(build: () => Parameters<NonNullable<ResolvedApiAuthOptions['emitEvent']>>[0]): void {
    const sink = this.options.emitEvent;
    if (sink !== null) sink(build());
  }

  /** For the rare waits (a delete's counters, the shutdown flush); lookups use `lookupDeadlines`. */
  withTimeout<T>(promise: Promise<T>, ms = this.options.verifyTimeoutMs): Promise<T> {
    if (ms === 0) return promise;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(backendTimedOut(ms)), ms);
      timer.unref();
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  private environmentOf(key: string): KeyEnvironment | undefined {
    return this.context.environmentOf(key);
  }

  private countByOwner(ownerId: string): Promise<number> {
    return this.context.countByOwner(ownerId);
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

