import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiAuthModule, ApiKeyService, BackendUnavailableError } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { startFullStack, type FullStack } from '../fixtures/full-stack.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { PostgresRelay } from '../fixtures/postgres-relay.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';
import { captureConsoleLines, CapturingLogger, DRIVER_CONNECTION_ERROR } from '../fixtures/log-capture.js';

/**
 * The Redis cache's `ttl` here. The test steps a fake Date past it rather than waiting
 * it out, so it is long: no stall of a busy machine gets near it between two steps.
 */
const TTL_MS = 60_000;
/**
 * The L1's TTL (the full stack's default). An L1 entry filled from the Redis cache
 * just before the latter's entry ends lives this long again, so a cached key outlives
 * the database by up to `TTL_MS + L1_TTL_MS` after its last database read.
 */
const L1_TTL_MS = 1_000;
/** When the key that expires during the outage does, after it was issued: well inside `TTL_MS`. */
const EXPIRY_MS = 20_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let db: TestDatabase;
let admin: Awaited<ReturnType<typeof connectRedis>>;
const namespace = uniqueNamespace('outage-cached');

beforeAll(async () => {
  db = await createTestDatabase('outage_cached');
  admin = await connectRedis();
});
afterAll(async () => {
  await deleteNamespace(admin, namespace);
  await admin?.close();
  await db?.drop();
});

describe.each(ADAPTERS)('PostgreSQL down behind the full stack (L1 -> Redis cache -> PostgreSQL) over %s', (adapter) => {
  let relay: PostgresRelay;
  let stack: FullStack;
  let other: FullStack;
  let app: INestApplication;
  // The outage is logged as errors on purpose here: kept and asserted, not printed.
  let logs: CapturingLogger;
  // And the driver prints its cut connections: kept and asserted too. Until afterAll,
  // since a cut connection may be handed out after the test's last check.
  let driverLines: ReturnType<typeof captureConsoleLines> | undefined;

  const call = (key: string) => request(app.getHttpServer()).get('/t/me').set('X-API-Key', key);

  beforeAll(async () => {
    relay = await PostgresRelay.start();
    const connection = {
      databaseUrl: relay.via(db.url),
      namespace: `${namespace}${adapter}`,
      ttl: TTL_MS,
      // The L1 reads Date.now when asked (not the function it saw at construction), so
      // the fake Date of the test below is its clock too.
      l1: { ttl: L1_TTL_MS, now: () => Date.now() },
      // What a production pool should have: fail fast instead of queueing for a minute.
      orm: { pool: { min: 0, max: 5, acquireTimeoutMillis: 1_000 }, driverOptions: { connection: { connectionTimeoutMillis: 1_000 } } },
    };
    stack = await startFullStack(connection);
    // A second instance of the fleet, on the same database and Redis; never used before the outage.
    other = await startFullStack(connection);
    app = await bootApp(adapter, [
      ApiAuthModule.forRoot({ prefix: 'oc_', backend: stack.backend, verifyTimeoutMs: 1_500, usageIntervalMs: 0 }),
    ]);
    logs = new CapturingLogger();
    app.useLogger(logs);
  });
  afterAll(async () => {
    await app?.close();
    await stack?.close();
    await other?.close();
    driverLines?.restore();
    await relay?.stop();
  });

  it('serves cached keys from the caches until their TTLs, honours revocations made before, answers 503 for the rest, and recovers without a restart', async () => {
    // Date stands still but for the test's steps: the TTLs and the expiry are reached by
    // steps, never by sleeping, and what is answered before and after each step is the
    // check. (Timers stay real: the pool's acquire timeout still ends a wait on the database.)
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      await outageAndRecovery();
    } finally {
      vi.useRealTimers();
    }
  });

  async function outageAndRecovery(): Promise<void> {
    const service = app.get(ApiKeyService);
    const otherService = new ApiKeyService(resolveApiAuthOptions({ prefix: 'oc_', backend: other.backend, verifyTimeoutMs: 1_500, trackUsage: false }));
    const issue = (name: string, expiresAt?: Date) => service.issue({ ownerId: `owner-${adapter}`, name, expiresAt });

    // Before the outage: each key in a known state, in the caches or not.
    const revokedCached = await issue('revoked, refusal cached');
    await call(revokedCached.key).expect(200);
    await service.revoke(revokedCached.apiKey.id);
    expect((await call(revokedCached.key).expect(401)).body.code).toBe('revoked_api_key');
    const revokedUncached = await issue('revoked, nothing cached since');
    await call(revokedUncached.key).expect(200);
    await service.revoke(revokedUncached.apiKey.id);
    const uncached = await issue('never used');
    const seenUnknown = service.format.generate();
    await call(seenUnknown).expect(401);
    const newUnknown = service.format.generate();
    const expiring = await issue('expires during the outage', new Date(Date.now() + EXPIRY_MS));
    await call(expiring.key).expect(200);
    const cached = await issue('used just before');
    const filling = Date.now();
    await call(cached.key).expect(200);
    const filledAt = Date.now();

    driverLines = captureConsoleLines(DRIVER_CONNECTION_ERROR);
    await relay.stop();

    // Right after: the cache answers for what it holds, the rest is 503, never 401 or 200.
    const neverAccepted: Array<{ name: string; key: string }> = [
      { name: 'revoked (cached refusal)', key: revokedCached.key },
      { name: 'revoked (not cached)', key: revokedUncached.key },
      { name: 'never used', key: uncached.key },
      { name: 'unknown, seen before', key: seenUnknown },
      { name: 'unknown, new', key: newUnknown },
    ];
    const accepted: string[] = [];
    const probeNeverAccepted = async () => {
      for (const { name, key } of neverAccepted) if ((await call(key)).status === 200) accepted.push(name);
    };
    for (let i = 0; i < 3; i++) {
      const ok = await call(cached.key);
      expect(ok.status).toBe(200);
      expect(ok.body.ownerId).toBe(`owner-${adapter}`);
      expect((await call(revokedCached.key)).body.code).toBe('revoked_api_key');
      const notCached = await call(revokedUncached.key);
      expect([notCached.status, notCached.body.code, notCached.headers['retry-after']]).toEqual([503, 'backend_unavailable', '1']);
      expect((await call(uncached.key)).status).toBe(503);
      expect((await call(newUnknown)).status).toBe(503);
      // A key the cache knows not to exist stays unknown.
      expect((await call(seenUnknown)).body.code).toBe('invalid_api_key');
    }
    // The Redis cache is the fleet's: an instance that never saw the key answers from it too.
    expect(await otherService.authenticate(cached.key)).toMatchObject({ ok: true, apiKey: { id: cached.apiKey.id } });
    expect(await otherService.authenticate(uncached.key)).toMatchObject({ ok: false, code: 'backend_unavailable' });

    // A revocation cannot be made while the database is down: it fails, and says so.
    await expect(service.revoke(cached.apiKey.id)).rejects.toBeInstanceOf(BackendUnavailableError);
    expect((await call(cached.key)).status).toBe(200);

    // A cached key stops at its expiry (the cache never outlives it), and without the database that is a 503.
    vi.setSystemTime(expiring.apiKey.expiresAt!.getTime() + 50);
    expect((await call(expiring.key)).status).toBe(503);
    await probeNeverAccepted();

    // Within the Redis cache's TTL a cached key works (past the L1's too: it refills from
    // Redis); past both, it needs the database like any other key: 503.
    const whileCached: number[] = [];
    for (const at of [filling + TTL_MS / 2, filling + TTL_MS - 1]) {
      vi.setSystemTime(at);
      whileCached.push((await call(cached.key)).status);
      await probeNeverAccepted();
    }
    expect(whileCached).toEqual([200, 200]);
    vi.setSystemTime(filledAt + TTL_MS + L1_TTL_MS + 100);
    expect((await call(cached.key)).status).toBe(503);
    expect(await otherService.authenticate(cached.key)).toMatchObject({ ok: false, code: 'backend_unavailable' });
    await probeNeverAccepted();
    expect(accepted).toEqual([]);

    // The database comes back: everything answers from it again, no restart.
    await relay.start();
    const seen: number[] = [];
    for (let attempt = 0; attempt < 200; attempt++) {
      const status = (await call(uncached.key)).status;
      seen.push(status);
      if (status === 200) break;
      await sleep(100);
    }
    expect(seen.at(-1)).toBe(200);
    expect(seen.every((status) => status === 503 || status === 200)).toBe(true);
    await call(cached.key).expect(200);
    expect((await call(revokedUncached.key)).body.code).toBe('revoked_api_key');
    expect((await call(newUnknown)).body.code).toBe('invalid_api_key');
    expect((await call(expiring.key)).body.code).toBe('expired_api_key');
    expect(await otherService.authenticate(cached.key)).toMatchObject({ ok: true });
    // And the revocation that failed during the outage can be made now.
    await service.revoke(cached.apiKey.id);
    expect((await call(cached.key)).body.code).toBe('revoked_api_key');

    // Every error logged was the outage, said without a key or a hash.
    const errors = logs.lines.filter((line) => line.startsWith('[error]'));
    expect(errors.length).toBeGreaterThan(0);
    for (const line of errors) expect(line).toMatch(/^\[error\] The API key backend is unavailable; answering 503: PostgreSQL is unavailable/);
    for (const secret of [cached.key, uncached.key]) expect(logs.lines.join('\n')).not.toContain(secret);
    expect(driverLines!.lines.length).toBeGreaterThan(0);
  }
});
