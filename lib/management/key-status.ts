import { toApiKeyView, type ApiKeyView } from '../api-key.interface.js';
import { ApiKeyRevokedError } from '../api-key.errors.js';
import { ApiKeyEventName } from '../events/api-key.events.js';
import { validateUpdateOptions } from './key-input.validation.js';
import type { EmitEvent, StoreWrites } from './store-writes.js';

/** Options of {@link ApiKeyService.disable} and {@link ApiKeyService.enable}. */
export interface SetKeyStatusOptions {
  /**
   * Write only if the key is still at this `version` (HTTP `If-Match`); otherwise
   * reject with `VersionConflictError` and write nothing.
   */
  expectedVersion?: number;
}

/**
 * Sets (`disabled`) or clears `disabledAt`, in one backend `update` pinned to the
 * version read (`StoreWrites.withConflictRetry`): of racing calls exactly one writes and
 * emits, and a concurrent revoke is never followed by an enable that read the key
 * before it (the pin fails, the re-read sees the revocation). Already in the asked
 * state: returns the record, writes and emits nothing. A revoked key:
 * `ApiKeyRevokedError`, since revocation is final and a revoked key must not look
 * switchable.
 */
export async function setKeyDisabled(
  store: StoreWrites,
  emit: EmitEvent,
  id: string,
  disabled: boolean,
  options: SetKeyStatusOptions = {},
): Promise<ApiKeyView> {
  const expectedVersion = validateUpdateOptions(options);
  let switchedAt: Date | null = null;
  const stored = await store.withConflictRetry(id, expectedVersion, (current) => {
    switchedAt = null;
    if (current.revokedAt !== null) throw new ApiKeyRevokedError(current.id);
    if ((current.disabledAt != null) === disabled) return null;
    switchedAt = new Date();
    return { disabledAt: disabled ? switchedAt : null, updatedAt: switchedAt };
  });
  const at: Date | null = switchedAt;
  if (at !== null) {
    emit(() => {
      const apiKey = toApiKeyView(stored);
      return disabled ? { type: ApiKeyEventName.Disabled, apiKey, at } : { type: ApiKeyEventName.Enabled, apiKey, at };
    });
  }
  return toApiKeyView(stored);
}
