import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import { toApiKeyView, type ApiKey, type ApiKeyView } from '../api-key.interface.js';
import { ApiKeyNotFoundError, ApiKeyRevokedError, VersionConflictError } from '../api-key.errors.js';
import { ApiKeyEventName } from '../events/api-key.events.js';
import { shownId, validateUpdateOptions } from './key-input.validation.js';

/** Options of {@link ApiKeyService.disable} and {@link ApiKeyService.enable}. */
export interface SetKeyStatusOptions {
  /**
   * Write only if the key is still at this `version` (HTTP `If-Match`); otherwise
   * reject with `VersionConflictError` and write nothing.
   */
  expectedVersion?: number;
}

/** What switching a key needs from the service. */
export interface KeyStatusContext {
  readonly options: ResolvedApiAuthOptions;
  /** The stored record, or `ApiKeyNotFoundError` (showing only a minted-shaped id). */
  require(id: string): Promise<ApiKey>;
}

/** Most re-reads after another writer moved the key between the read and the write. */
const MAX_CONFLICT_RETRIES = 10;

/**
 * Sets (`disabled`) or clears `disabledAt`, in one backend `update` pinned to the
 * version read: of racing calls exactly one writes and emits, and a concurrent revoke
 * is never followed by an enable that read the key before it (the pin fails, the
 * re-read sees the revocation). Already in the asked state: returns the record,
 * writes and emits nothing. A revoked key: `ApiKeyRevokedError`, since revocation is
 * final and a revoked key must not look switchable.
 */
export async function setKeyDisabled(
  context: KeyStatusContext,
  id: string,
  disabled: boolean,
  options: SetKeyStatusOptions = {},
): Promise<ApiKeyView> {
  const expectedVersion = validateUpdateOptions(options);
  const backend = context.options.backend;
  for (let attempt = 0; ; attempt++) {
    const current = await context.require(id);
    const version = current.version ?? 1;
    if (expectedVersion !== undefined && version !== expectedVersion) {
      throw new VersionConflictError(shownId(current.id), expectedVersion, version);
    }
    if (current.revokedAt !== null) throw new ApiKeyRevokedError(current.id);
    if ((current.disabledAt != null) === disabled) return toApiKeyView(current);
    const now = new Date();
    let written: ApiKey;
    try {
      written = await backend.update(current.id, { disabledAt: disabled ? now : null, updatedAt: now }, { expectedVersion: version });
    } catch (error) {
      if (error instanceof VersionConflictError) {
        if (expectedVersion === undefined && attempt < MAX_CONFLICT_RETRIES) continue;
        throw new VersionConflictError(shownId(current.id), error.expectedVersion, error.actualVersion);
      }
      if (error instanceof ApiKeyNotFoundError) throw new ApiKeyNotFoundError(shownId(current.id));
      throw error;
    }
    const sink = context.options.emitEvent;
    if (sink !== null) {
      const apiKey = toApiKeyView(written);
      sink(disabled ? { type: ApiKeyEventName.Disabled, apiKey, at: now } : { type: ApiKeyEventName.Enabled, apiKey, at: now });
    }
    return toApiKeyView(written);
  }
}
