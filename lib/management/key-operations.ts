import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import { toApiKeyView, type ApiKeyView } from '../api-key.interface.js';
import { ApiKeyValidationError, VersionConflictError } from '../api-key.errors.js';
import type { ApiKeyChanges } from '../backends/backend.interface.js';
import { ApiKeyEventName } from '../events/api-key.events.js';
import type { KeyFormat } from '../keys/key-format.js';
import type { KeyHasher } from '../keys/key-hasher.js';
import type { LegacyKeyFormat } from '../keys/legacy-key-format.js';
import type { ApiKeyPolicy } from '../policy/api-key-policy.js';
import { hasLimits, validatePolicy } from '../policy/policy.validation.js';
import type { KeyEnvironment } from '../verification/key-verifier.js';
import { importKey } from './key-import.js';
import { resolveKeyDefaults, withDefaults, type KeyDefaults } from './key-defaults.js';
import { assertWithinMaxLifetime, expiryForNewKey } from './key-lifetime.js';
import {
  assertKnownFields,
  ISSUE_FIELDS,
  requireIdShape,
  shownId,
  validateExpiry,
  validateMetadata,
  validateName,
  validateNewKey,
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
import { KeyMinter } from './key-minter.js';
import { KeyRevocation } from './key-revocation.js';
import { rotateKey } from './key-rotation.js';
import { setKeyDisabled, type SetKeyStatusOptions } from './key-status.js';
import { StoreWrites, type EmitEvent } from './store-writes.js';

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
 * deleting and rotating keys, with events. The service's public verbs document the
 * behaviour and delegate here; each operation with more than a few steps has its own
 * file beside this one.
 */
export class KeyOperations {
  private readonly store: StoreWrites;
  private readonly minter: KeyMinter;
  private readonly revocation: KeyRevocation;
  private readonly emit: EmitEvent;
  /** `defaultScopes` / `defaultPolicy`, validated here since their checks are the key inputs'. */
  readonly defaults: KeyDefaults;

  constructor(
    private readonly options: ResolvedApiAuthOptions,
    private readonly context: KeyOperationsContext,
  ) {
    this.store = new StoreWrites(options.backend, options.verifyTimeoutMs);
    this.minter = new KeyMinter(options, context.formats, context.hasher, this.store, (ownerId) => context.countByOwner(ownerId));
    const sink = options.emitEvent;
    this.emit = sink === null ? () => undefined : (build) => sink(build());
    this.revocation = new KeyRevocation(this.store, this.emit);
    this.defaults = resolveKeyDefaults(options.defaultScopes ?? undefined, options.defaultPolicy ?? undefined, options.maxScopes);
  }

  /** See {@link ApiKeyService.issue}. */
  async issue(input: IssueApiKeyInput): Promise<IssuedApiKey> {
    if (input == null || typeof input !== 'object') throw new ApiKeyValidationError('input', 'must be an object');
    assertKnownFields(input, ISSUE_FIELDS);
    const now = new Date();
    const fields = validateNewKey(withDefaults(input, this.defaults), now, this.options);
    fields.expiresAt = expiryForNewKey(input.expiresAt === undefined ? undefined : fields.expiresAt, now, this.options.keyLifetime);
    await this.minter.assertRoomFor(fields.ownerId);
    const issued = await this.minter.mint({ ...fields, rotatedFromId: null }, now);
    this.emit(() => ({ type: ApiKeyEventName.Issued, apiKey: { ...issued.apiKey }, at: now }));
    return issued;
  }

  async import(source: ImportApiKeySource, input: ImportApiKeyInput): Promise<ApiKeyView> {
    const stored = await importKey(
      {
        options: this.options,
        legacy: this.context.legacy,
        hasher: this.context.hasher,
        minter: this.minter,
        defaults: this.defaults,
        environmentOf: (key) => this.context.environmentOf(key),
      },
      source,
      input,
    );
    this.emit(() => ({ type: ApiKeyEventName.Imported, apiKey: toApiKeyView(stored), at: stored.updatedAt }));
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
    if (policy !== undefined && policy !== null && policy.counterKey === undefined && hasLimits(policy)) {
      // The new policy keeps the stored one's counter key. That key is fixed when a key
      // is minted (rotation, self-service issue) and only code naming another changes
      // it, so the read does not pin the write: pinned, a key whose holder writes its
      // metadata in a loop could starve an admin's policy change.
      const current = await this.store.require(id);
      if (expectedVersion !== undefined && (current.version ?? 1) !== expectedVersion) {
        throw new VersionConflictError(shownId(id), expectedVersion, current.version ?? 1);
      }
      write.policy = keepCounterKey(policy, current.policy);
    } else if (policy !== undefined) {
      write.policy = policy;
    }
    const updated = await this.store.write(id, write, expectedVersion);
    this.emit(() => ({ type: ApiKeyEventName.Updated, apiKey: toApiKeyView(updated), changed: given, at: now }));
    return toApiKeyView(updated);
  }

  revoke(id: string, options: RevokeApiKeyOptions = {}): Promise<ApiKeyView> {
    return this.revocation.revoke(id, options);
  }

  async delete(id: string): Promise<void> {
    // The event names the owner, which only the record knows; without listeners, no read.
    const existing = this.options.emitEvent !== null ? await this.options.backend.getById(id) : null;
    await this.options.backend.delete(id);
    if (!existing) return;
    this.emit(() => ({ type: ApiKeyEventName.Deleted, id: existing.id, ownerId: existing.ownerId, at: new Date() }));
  }

  /** See {@link ApiKeyService.disable} and {@link ApiKeyService.enable}. */
  setDisabled(id: string, disabled: boolean, options: SetKeyStatusOptions = {}): Promise<ApiKeyView> {
    return setKeyDisabled(this.store, this.emit, id, disabled, options);
  }

  rotate(id: string, options: RotateApiKeyOptions = {}): Promise<RotatedApiKey> {
    return rotateKey({ options: this.options, store: this.store, minter: this.minter, emit: this.emit }, id, options);
  }

  /** For the rare waits (the shutdown flush); lookups use `lookupDeadlines`. */
  withTimeout<T>(promise: Promise<T>, ms?: number): Promise<T> {
    return this.store.withTimeout(promise, ms);
  }
}

/** Fields of {@link UpdateApiKeyInput}, named in `api-key.updated` events. */
const UPDATABLE = ['name', 'scopes', 'metadata', 'expiresAt', 'policy'] as const;

/**
 * A new policy keeps the counter key of the one it replaces unless it names its own:
 * raising a rotated key's limit must not also hand it a fresh budget.
 */
function keepCounterKey(next: ApiKeyPolicy, current: ApiKeyPolicy | null): ApiKeyPolicy {
  if (current?.counterKey === undefined) return next;
  return { ...next, counterKey: current.counterKey };
}
