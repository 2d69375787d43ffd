import { toApiKeyView, type ApiKey, type ApiKeyView } from '../api-key.interface.js';
import { ApiKeyValidationError, VersionConflictError } from '../api-key.errors.js';
import { ApiKeyEventName } from '../events/api-key.events.js';
import { revokeIssuedKeys } from './cascade-revocation.js';
import { assertKnownFields, REVOKE_OPTION_FIELDS, shownId, validateUpdateOptions } from './key-input.validation.js';
import type { RevokeApiKeyOptions } from './key-inputs.js';
import { MAX_CONFLICT_RETRIES, type EmitEvent, type StoreWrites } from './store-writes.js';

/**
 * Revokes a key, and with `cascade` every key it issued (see `ApiKeyService.revoke`).
 * Revocation must never fail because other writers keep moving the key, and of racing
 * revokes exactly one writes and emits.
 */
export class KeyRevocation {
  constructor(
    private readonly store: StoreWrites,
    private readonly emit: EmitEvent,
  ) {}

  async revoke(id: string, options: RevokeApiKeyOptions): Promise<ApiKeyView> {
    if (options == null || typeof options !== 'object') throw new ApiKeyValidationError('options', 'must be an object');
    assertKnownFields(options, REVOKE_OPTION_FIELDS);
    if (options.cascade !== undefined && typeof options.cascade !== 'boolean') {
      throw new ApiKeyValidationError('cascade', 'must be a boolean');
    }
    const expectedVersion = validateUpdateOptions({ expectedVersion: options.expectedVersion });
    const record = await this.store.require(id);
    if (expectedVersion !== undefined && expectedVersion !== (record.version ?? 1)) {
      throw new VersionConflictError(shownId(record.id), expectedVersion, record.version ?? 1);
    }
    const revoked = await this.revokeOne(record, undefined, expectedVersion !== undefined);
    if (options.cascade === true) await revokeIssuedKeys(this.store.backend, record, (key) => this.revokeOne(key, record.id));
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
        revoked = await this.store.backend.update(current.id, { revokedAt: now, updatedAt: now }, options);
      } catch (error) {
        if (pinned || !(error instanceof VersionConflictError)) throw this.store.shownError(error, current.id);
        current = await this.store.require(current.id);
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
}
