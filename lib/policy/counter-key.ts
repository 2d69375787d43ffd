import type { ApiKey } from '../api-key.interface.js';

/** The id a key's rate-limit and quota counters are kept under (as the guard counts them). */
export function counterKeyOf(apiKey: Pick<ApiKey, 'id' | 'policy'>): string {
  return apiKey.policy?.counterKey ?? apiKey.id;
}
