import type { SampleBackend } from '../sample-backend.js';

// Replaced when the postgres backend lands.
export async function createPostgresBackend(): Promise<SampleBackend> {
  throw new Error('API_AUTH_BACKEND=postgres is not available yet.');
}
