import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService, type ApiKeyBackend } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { RedisCacheBackend } from 'nestjs-api-auth/redis';
import { runBackendConformance } from 'nestjs-api-auth/testing';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { CountingBackend } from '../fixtures/counting.backend.js';
import { initOrm, insertLegacyRow } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';
import { CACHE_VARIANTS, type TestCache } from '../fixtures/redis-cache.fixtures.js';

// Redis in front of PostgreSQL, the production shape: both real servers, a database
// and a Redis key prefix of this file's own.
let db: TestDatabase;
let orm: MikroORM;
let raw: Awaited<ReturnType<typeof connectRedis>>;
const prefix = uniqueNamespace('redis-cache-mikro-orm');
const opened: TestCache[] = [];
const backends: RedisCacheBackend[] = [];

beforeAll(async () => {
  db = await createTestDatabase('redis_cache');
  orm = await initOrm(db.url);
  await new MikroOrmBackend(orm).ensureSchema();
  raw = await connectRedis();
});

afterAll(async () => {
  for (const backend of backends) await backend.dispose();
  for (const cache of opened) await cache.close();
  await deleteNamespace(raw, prefix);
  await raw?.close();
  await orm?.close();
  await db?.drop();
});

describe.each(CACHE_VARIANTS)('RedisCacheBackend with $name over MikroOrmBackend', (variant) => {
  async function cachedBackend(primary: ApiKeyBackend = new MikroOrmBackend(orm)) {
    const cache = await variant.create(prefix);
    opened.push(cache);
    // Counted reads: a generous timeout so a loaded machine cannot add a fallback read.
    const backend = new RedisCacheBackend({ cache: cache.cache, primary, ttl: 60_000, timeoutMs: 2_000 });
    backends.push(backend);
    return backend;
  }

  runBackendConformance(`RedisCacheBackend (${variant.name}) over MikroOrmBackend`, { describe, it, beforeAll, afterAll }, {
    create: () => cachedBackend(),
    storeLegacyRecord: (_backend, record) => insertLegacyRow(db, record),
  });

  it('verifies a hot key from Redis and stops it at once when it is revoked in PostgreSQL', async () => {
    const primary = new CountingBackend(new MikroOrmBackend(orm));
    const backend = await cachedBackend(primary);
    const service = new ApiKeyService(resolveApiAuthOptions({ prefix: 'pg_', backend, trackUsage: false }));
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'hot' });
    primary.reset();
    const results = await Promise.all(Array.from({ length: 200 }, () => service.verify(key)));
    expect(results.every((r) => r?.id === apiKey.id)).toBe(true);
    expect(primary.calls('getByHash')).toBe(1);
    await service.revoke(apiKey.id);
    expect(await service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
  });
});
