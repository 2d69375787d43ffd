import type { ApiKey } from '../api-key.interface.js';
import { replacementIdFor } from '../replacement-id.js';

/**
 * How far back a rotation chain is followed to recognise a predecessor's counter key.
 * Each step is one SHA-256; a key rotated daily reaches it after almost three years,
 * and past it the counters are only left to expire, as before deletion removed any.
 */
export const MAX_ROTATION_STEPS = 1_000;

/** The id a key's rate-limit and quota counters are kept under (as the guard counts them). */
export function counterKeyOf(apiKey: Pick<ApiKey, 'id' | 'policy'>): string {
  return apiKey.policy?.counterKey ?? apiKey.id;
}

/**
 * Whether deleting `apiKey` may remove the counters under its counter key, before
 * asking whether another key still counts against them: only when the library put
 * them there for this key's lineage. That is the key's own id, or the id of a key it
 * replaced by rotation (replacement ids are derived from the old id, so the chain is
 * followed forward from the counter key without reading a record). A counter key set
 * by the application (a team's shared budget, possibly across owners) is never
 * removed: only the application knows who else spends it.
 */
export function mayReleaseCounters(apiKey: Pick<ApiKey, 'id' | 'policy' | 'rotatedFromId'>): boolean {
  const counterKey = counterKeyOf(apiKey);
  if (counterKey === apiKey.id) return true;
  if (apiKey.rotatedFromId == null) return false;
  let id = counterKey;
  for (let step = 0; step < MAX_ROTATION_STEPS; step++) {
    id = replacementIdFor(id);
    if (id === apiKey.id) return true;
  }
  return false;
}
