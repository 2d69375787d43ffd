import type { SampleBackend } from '../sample-backend.js';

// Replaced when the redis backend lands.
export async function createRedisBackend(): Promise<SampleBackend> {
  throw new Error('API_AUTH_BACKEND=redis is not available yet.');
}
