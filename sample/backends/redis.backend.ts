import { RedisBackend } from 'nestjs-api-auth/redis';
import { createClient } from 'redis';
import type { SampleBackend } from '../sample-backend.js';

/**
 * `API_AUTH_BACKEND=redis`: Redis as the only key store, on `REDIS_URL`. The app opens
 * the connection, so the app closes it; `RedisBackend` never does.
 */
export async function createRedisBackend(): Promise<SampleBackend> {
  const client = createClient({
    url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    // While Redis is unreachable, fail calls at once (the guard answers 503) instead
    // of queueing them until it is back.
    disableOfflineQueue: true,
    socket: { connectTimeout: 2_000, reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, 2_000) },
  });
  // node-redis throws socket errors that have no listener. Reconnecting is its job;
  // say so once per outage, not on every retry.
  let down = false;
  client.on('error', (error: Error) => {
    if (!down) console.warn(`Redis is unreachable (${error.message}); retrying.`);
    down = true;
  });
  client.on('ready', () => {
    if (down) console.warn('Redis is back.');
    down = false;
  });
  await client.connect();
  return {
    backend: new RedisBackend(client, { namespace: process.env.REDIS_NAMESPACE ?? 'api-auth:' }),
    close: async () => {
      if (client.isOpen) await client.close();
    },
  };
}
