import type { ApiKeyBackend } from 'nestjs-api-auth';

/** A backend for the sample plus whatever must be closed on shutdown. */
export interface SampleBackend {
  backend: ApiKeyBackend | undefined;
  close(): Promise<void>;
}

/**
 * Picks the store from `API_AUTH_BACKEND`: `memory` (default, nothing to run),
 * `postgres` (MikroORM on `DATABASE_URL`), `redis` (Redis as the store, `REDIS_URL`)
 * or `cached` (Redis in front of PostgreSQL). Each lives in its own file so the
 * memory default never loads MikroORM or Redis.
 */
export async function createSampleBackend(kind = process.env.API_AUTH_BACKEND ?? 'memory'): Promise<SampleBackend> {
  switch (kind) {
    case 'memory':
      // The module creates a MemoryBackend when none is given.
      return { backend: undefined, close: async () => undefined };
    case 'postgres':
      return (await import('./backends/postgres.backend.js')).createPostgresBackend();
    case 'redis':
      return (await import('./backends/redis.backend.js')).createRedisBackend();
    case 'cached':
      return (await import('./backends/cached.backend.js')).createCachedBackend();
    default:
      throw new Error(`API_AUTH_BACKEND must be memory, postgres, redis or cached (got ${JSON.stringify(kind)}).`);
  }
}
