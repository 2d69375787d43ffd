import { UnsupportedBackendOperationError } from '../api-key.errors.js';
import type { ApiKeyBackend } from '../backends/backend.interface.js';
import type { ApiKeyEventSink } from '../events/api-key-event.sink.js';
import { ApiKeyEventName } from '../events/api-key.events.js';
import { validatePurgeKeysOptions, type PurgeKeysOptions, type PurgeResult } from './purge.options.js';

/**
 * Deletes expired and revoked keys in batches of `batchSize` (one bounded backend call
 * each) until a batch comes back short or `maxBatches` have run. Emits one
 * `api-key.purged` event with the count when it deleted something.
 */
export async function purgeKeys(backend: ApiKeyBackend, options: PurgeKeysOptions, emit: ApiKeyEventSink | null): Promise<PurgeResult> {
  const now = new Date();
  const { expiredBefore, revokedBefore, batchSize, maxBatches } = validatePurgeKeysOptions(options, now);
  if (typeof backend.purge !== 'function') throw new UnsupportedBackendOperationError('purge');
  let deleted = 0;
  let batches = 0;
  let done = false;
  while (!done && batches < maxBatches) {
    const count = await backend.purge({ expiredBefore, revokedBefore, limit: batchSize });
    batches++;
    deleted += count;
    done = count < batchSize;
  }
  if (deleted > 0 && emit !== null) {
    emit({ type: ApiKeyEventName.Purged, deleted, batches, done, at: new Date() });
  }
  return { deleted, batches, done };
}
