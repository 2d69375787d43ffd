import type { SampleBackend } from '../sample-backend.js';

// Replaced when the cached backend lands.
export async function createCachedBackend(): Promise<SampleBackend> {
  throw new Error('API_AUTH_BACKEND=cached is not available yet.');
}
