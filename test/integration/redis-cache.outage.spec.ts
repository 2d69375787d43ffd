import KeyvRedis from '@keyv/redis';
import type { LoggerService } from '@nestjs/common';
import { createCache } from 'cache-manager';
import { Keyv } from 'keyv';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiKeyService, BackendUnavailableError, MemoryBackend, type AuthenticationResult } from 'nestjs-api-auth';
import { RedisCacheBackend } from 'nestjs-api-auth/redis';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { CountingBackend } from '../fixtures/counting.backend.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';
import { CACHE_VARIANTS, RedisProxy, type TestCache } from '../fixtures/redis-cache.fixtures.js';
import { pollUntil } from '../fixtures/wait-for.js';

const NAMESPACE = 'api-auth';
/** Rounds of four lookups (valid, revoked, doomed, unknown) during the outage. */
const OUTAGE_ROUNDS = 24;
/** The round before which the doomed key is revoked, with Redis away. */
const REVOKE_AT_ROUND = 8;

/** A LoggerService that keeps what it was told, so a test can count warnings. */
function recordingLogger() {
  const lines = { log: [] as string[], warn: [] as string[], error: [] as string[] };
  const logger: LoggerService = {
    log: (message: unknown) => void lines.log.push(String(message)),
    warn: (message: unknown) => void lines.warn.push(String(message)),
    error: (message: unknown) => void lines.error.push(String(message)),
  };
  return { logger, lines };
}

function serviceOver(backend: RedisCacheBackend): ApiKeyService {
  return new ApiKeyService(resolveApiAuthOptions({ prefix: 'ro_', backend, trackUsage: false }));
}

describe.each(CACHE_VARIANTS)('RedisCacheBackend with $name when Redis fails mid-test', (variant) => {
  const prefix = uniqueNamespace(`redis-cache-outage-${variant.name.replace(/\W+/g, '-')}`);
  let raw: Awaited<ReturnType<typeof connectRedis>>;
  const opened: TestCache[] = [];

  beforeAll(async () => {
    raw = await connectRedis();
  });

  afterAll(async () => {
    for (const cache of opened) await cache.close();
    await deleteNamespace(raw, prefix);
    await raw.close();
  });

  it.each(['hang', 'down'] as const)(
    'Redis %s, writes in "replay" mode: answers from the primary with no 5xx and nothing wrongly accepted, warns once, then caches again',
    async (mode) => {
      const proxy = await RedisProxy.start();
      const { logger, lines } = recordingLogger();
      const viaProxy = await variant.create(prefix, proxy.url);
      const direct = await variant.create(prefix);
      opened.push(viaProxy, direct);
      const primary = new CountingBackend(new MemoryBackend());
      // A goes through the proxy that fails; B, another instance, keeps its own path to Redis.
      const a = new RedisCacheBackend({
        cache: viaProxy.cache,
        primary,
        ttl: 300_000,
        timeoutMs: 100,
        retryIntervalMs: 200,
        logger,
        namespace: NAMESPACE,
        unreachableWrites: 'replay',
      });
      const b = new RedisCacheBackend({ cache: direct.cache, primary, ttl: 300_000, logger: recordingLogger().logger, namespace: NAMESPACE });
      const serviceA = serviceOver(a);
      const serviceB = serviceOver(b);
      try {
        const valid = await serviceA.issue({ ownerId: 'o', name: 'valid' });
        const revoked = await serviceA.issue({ ownerId: 'o', name: 'revoked' });
        await serviceA.revoke(revoked.apiKey.id);
        const doomed = await serviceA.issue({ ownerId: 'o', name: 'revoked during the outage' });
        const unknown = serviceA.format.generate();
        for (const service of [serviceA, serviceB]) {
          for (const key of [valid.key, revoked.key, doomed.key]) await service.authenticate(key);
        }
        expect(a.cacheAvailable).toBe(true);
        expect(lines.warn).toEqual([]);

        proxy[mode]();
        const outcomes: Array<{ key: string; result: AuthenticationResult; afterRevoke: boolean }> = [];
        // By rounds, not by time: what is answered, and in which order, is the check. The
        // circuit opening (cacheAvailable below) is what keeps later lookups off a hung Redis.
        for (let round = 0; round < OUTAGE_ROUNDS; round++) {
          if (round === REVOKE_AT_ROUND) await serviceA.revoke(doomed.apiKey.id);
          const afterRevoke = round >= REVOKE_AT_ROUND;
          await Promise.all(
            [valid.key, revoked.key, doomed.key, unknown].map(async (key) => {
              const result = await serviceA.authenticate(key);
              outcomes.push({ key, result, afterRevoke });
            }),
          );
        }

        expect(outcomes).toHaveLength(OUTAGE_ROUNDS * 4);
        expect(outcomes.filter((o) => !o.result.ok && o.result.code === 'backend_unavailable')).toEqual([]);
        const byKey = (key: string) => outcomes.filter((o) => o.key === key);
        expect(byKey(valid.key).every((o) => o.result.ok)).toBe(true);
        expect(byKey(revoked.key).every((o) => !o.result.ok && o.result.code === 'revoked_api_key')).toBe(true);
        expect(byKey(unknown).every((o) => !o.result.ok && o.result.code === 'invalid_api_key')).toBe(true);
        const doomedAfter = byKey(doomed.key).filter((o) => o.afterRevoke);
        expect(doomedAfter).toHaveLength(OUTAGE_ROUNDS - REVOKE_AT_ROUND);
        expect(doomedAfter.every((o) => !o.result.ok && o.result.code === 'revoked_api_key')).toBe(true);
        expect(a.cacheAvailable).toBe(false);
        expect(lines.warn).toHaveLength(1);
        expect(lines.warn[0]).toMatch(/Redis cache is unavailable/);

        proxy.restore();
        await pollUntil(() => a.cacheAvailable, 'the cache to come back');
        expect(lines.log).toHaveLength(1);
        expect(lines.log[0]).toMatch(/back after .* 1 pending invalidation\(s\) replayed/);
        expect(lines.warn).toHaveLength(1);

        // The revoke made during the outage now reaches the instance that never lost Redis.
        expect(await serviceB.authenticate(doomed.key)).toEqual({ ok: false, code: 'revoked_api_key' });
        expect(await serviceA.authenticate(doomed.key)).toEqual({ ok: false, code: 'revoked_api_key' });

        // Caching resumes: one refill (entries from before the recovery are not trusted), then hits.
        primary.reset();
        for (let i = 0; i < 100; i++) expect((await serviceA.authenticate(valid.key)).ok).toBe(true);
        expect(primary.calls('getByHash')).toBe(1);
      } finally {
        await a.dispose();
        await b.dispose();
        await proxy.close();
      }
    },
  );
});

describe('RedisCacheBackend with a cache pointed at a closed port', () => {
  let store: KeyvRedis<unknown>;
  let backend: RedisCacheBackend;

  afterAll(async () => {
    await backend?.dispose();
    await store?.disconnect(true).catch(() => undefined);
  });

  it('serves every request from the primary, with one warning', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));

    const { logger, lines } = recordingLogger();
    store = new KeyvRedis({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: () => 200 } });
    const cache = createCache({ stores: [new Keyv({ store, namespace: uniqueNamespace('redis-cache-closed') })] });
    const primary = new CountingBackend(new MemoryBackend());
    backend = new RedisCacheBackend({ cache, primary, ttl: 60_000, timeoutMs: 100, retryIntervalMs: 200, logger });
    // The circuit probes through this method; counting its calls replaces a guessed wait.
    const probes = vi.spyOn(backend as unknown as { probe(): Promise<void> }, 'probe');
    const service = serviceOver(backend);

    // Writes need the cache (they are refused: below); the key is stored behind its back.
    const { key, apiKey } = await new ApiKeyService(resolveApiAuthOptions({ prefix: 'ro_', backend: primary, trackUsage: false })).issue({
      ownerId: 'o',
      name: 'k',
    });
    await expect(service.issue({ ownerId: 'o', name: 'refused' })).rejects.toBeInstanceOf(BackendUnavailableError);
    const results = await Promise.all(Array.from({ length: 50 }, () => service.authenticate(key)));
    expect(results.every((r) => r.ok)).toBe(true);
    // A write cannot hold back cached copies it cannot reach: refused, nothing changed.
    await expect(service.revoke(apiKey.id)).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(primary.calls('update')).toBe(0);
    expect((await service.authenticate(key)).ok).toBe(true);
    await pollUntil(() => probes.mock.calls.length >= 3, 'three failed probes', { attempts: 1_000, intervalMs: 20 });
    expect(backend.cacheAvailable).toBe(false);
    expect(lines.warn).toHaveLength(1);
    expect(lines.log).toEqual([]);
  });
});
