import { Catch, type ArgumentsHost, type INestApplication } from '@nestjs/common';
import { APP_FILTER, BaseExceptionFilter } from '@nestjs/core';
import { createHash, createHmac } from 'node:crypto';
import { inspect } from 'node:util';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiAuthModule, ApiKeyService, type ApiKeyEvent } from 'nestjs-api-auth';
import { ADAPTERS, GuardedController, bootApp } from '../fixtures/app.js';
import { startFullStack, type FullStack } from '../fixtures/full-stack.js';
import { CapturingLogger, captureProcessOutput } from '../fixtures/log-capture.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { PostgresRelay } from '../fixtures/postgres-relay.js';
import { connectRedis, scanKeys, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';
import { RedisProxy } from '../fixtures/redis-cache.fixtures.js';
import { pollUntil } from '../fixtures/wait-for.js';

const PREFIX = 'fss_';
const PEPPER = 'secrets-full-stack-pepper-0123456789';
const ADMIN_SCOPE = 'api-keys:admin';

/** Every exception that reached Nest's last-resort handler, rendered with its causes. */
const exceptions: string[] = [];

@Catch()
class RecordingExceptionFilter extends BaseExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost) {
    exceptions.push(inspect(exception, { depth: 8 }));
    super.catch(exception, host);
  }
}

/** One HTTP answer, as the client saw it. */
interface Exchange {
  label: string;
  status: number;
  headers: string;
  body: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every value stored under a Redis key, whatever its type, as text. */
async function readRedisValue(client: Awaited<ReturnType<typeof connectRedis>>, key: string): Promise<string> {
  const type = String(await client.sendCommand(['TYPE', key]));
  const read: Record<string, string[]> = {
    string: ['GET', key],
    hash: ['HGETALL', key],
    set: ['SMEMBERS', key],
    zset: ['ZRANGE', key, '0', '-1', 'WITHSCORES'],
    list: ['LRANGE', key, '0', '-1'],
    stream: ['XRANGE', key, '-', '+'],
  };
  if (!read[type]) return `(${type})`;
  return `${type} ${inspect(await client.sendCommand(read[type]!), { depth: 8, maxArrayLength: null, maxStringLength: null })}`;
}

let admin: Awaited<ReturnType<typeof connectRedis>>;
const namespace = uniqueNamespace('secrets-full');

beforeAll(async () => {
  admin = await connectRedis();
});
afterAll(async () => {
  await deleteNamespace(admin, namespace);
  await admin?.close();
});

describe.each(ADAPTERS)('no plaintext key anywhere after a full lifecycle on the full stack over %s', (adapter) => {
  const deployment = `${namespace}${adapter}`;
  const logger = new CapturingLogger();
  const events: ApiKeyEvent[] = [];
  const busMessages: string[] = [];
  const exchanges: Exchange[] = [];
  const thrown: string[] = [];
  /** Each plaintext key, and the one response allowed to carry it (if any). */
  const keys = new Map<string, string | null>();
  let db: TestDatabase;
  let relay: PostgresRelay;
  let proxy: RedisProxy;
  let stack: FullStack;
  let app: INestApplication;
  let output: ReturnType<typeof captureProcessOutput>;
  let subscriber: Awaited<ReturnType<typeof connectRedis>>;
  let http: ReturnType<typeof request>;
  let adminKey: string;
  let pgRows: string[] = [];
  let storedHashes: string[] = [];
  let redisEntries: string[] = [];

  const hashOf = (key: string) => createHmac('sha256', PEPPER).update(key).digest('hex');

  async function send(label: string, req: request.Test, key: string | null = adminKey): Promise<request.Response> {
    const res = await (key === null ? req : req.set('X-API-Key', key));
    exchanges.push({ label, status: res.status, headers: JSON.stringify(res.headers), body: res.text ?? '' });
    return res;
  }

  beforeAll(async () => {
    exceptions.length = 0;
    db = await createTestDatabase(`secrets_full_${adapter}`);
    relay = await PostgresRelay.start();
    proxy = await RedisProxy.start();
    stack = await startFullStack({
      databaseUrl: relay.via(db.url),
      namespace: deployment,
      redisUrl: proxy.url,
      logger,
      orm: { pool: { min: 0, max: 5, acquireTimeoutMillis: 1_000 }, driverOptions: { connection: { connectionTimeoutMillis: 1_000 } } },
    });
    // Whatever the bus carries over Redis, as anyone with MONITOR or SUBSCRIBE would see it.
    subscriber = await connectRedis();
    await subscriber.pSubscribe(`${deployment}*`, (message) => void busMessages.push(message));
    app = await bootApp(
      adapter,
      [
        ApiAuthModule.forRoot({
          prefix: PREFIX,
          pepper: PEPPER,
          backend: stack.backend,
          usageIntervalMs: 0,
          verifyTimeoutMs: 1_500,
          onEvent: (event) => void events.push(event),
          routes: true,
        }),
      ],
      { controllers: [GuardedController], providers: [{ provide: APP_FILTER, useClass: RecordingExceptionFilter }] },
    );
    app.useLogger(logger);
    output = captureProcessOutput();
    http = request(app.getHttpServer());
    // The first admin key comes from the service, as `create-key` makes it: never over HTTP.
    adminKey = (await app.get(ApiKeyService).issue({ ownerId: 'ops', name: 'admin', scopes: [ADMIN_SCOPE] })).key;
    keys.set(adminKey, null);
  });

  afterAll(async () => {
    output?.restore();
    await subscriber?.close();
    await app?.close();
    await stack?.close();
    await relay?.stop();
    await proxy?.close();
    await db?.drop();
  });

  it('runs issue, use, failures, a PostgreSQL and a Redis outage, rotate, revoke, expiry and delete over HTTP', async () => {
    const issued = await send(
      'issue',
      http.post('/api-keys').send({ ownerId: 'tenant-1', name: 'primary', scopes: ['things:read'], metadata: { plan: 'pro' } }),
    );
    expect(issued.status).toBe(201);
    const key: string = issued.body.key;
    const id: string = issued.body.apiKey.id;
    keys.set(key, 'issue');

    expect((await send('use', http.get('/t/me'), key)).status).toBe(200);
    expect((await send('use bearer', http.get('/t/me').set('Authorization', `Bearer ${key}`), null)).status).toBe(200);
    expect((await send('get', http.get(`/api-keys/${id}`))).status).toBe(200);
    expect((await send('list', http.get('/api-keys?ownerId=tenant-1'))).status).toBe(200);
    expect((await send('update', http.patch(`/api-keys/${id}`).send({ name: 'renamed' }))).status).toBe(200);

    // Refusals of every kind.
    const typo = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    expect((await send('missing', http.get('/t/me'), null)).status).toBe(401);
    expect((await send('typo', http.get('/t/me'), typo)).status).toBe(401);
    expect((await send('padded', http.get('/t/me'), key + 'x')).status).toBe(401);
    expect((await send('in query', http.get(`/t/me?api_key=${key}`), null)).status).toBe(401);
    expect((await send('scope', http.get('/t/write'), key)).status).toBe(403);
    expect((await send('no admin scope', http.get(`/api-keys/${id}`), key)).status).toBe(403);
    expect((await send('key as id', http.get(`/api-keys/${key}`))).status).toBe(404);
    expect((await send('revoke key as id', http.post(`/api-keys/${key}/revoke`))).status).toBe(404);
    expect((await send('bad update', http.patch(`/api-keys/${id}`).send({ expiresAt: '2001-01-01' }))).status).toBe(400);

    // PostgreSQL goes away: a cached key still works, an uncached one and management get 503.
    const quiet = await send('issue quiet', http.post('/api-keys').send({ ownerId: 'tenant-1', name: 'quiet', scopes: ['things:read'] }));
    keys.set(quiet.body.key, 'issue quiet');
    expect(quiet.status).toBe(201);
    await relay.stop();
    expect((await send('outage, cached', http.get('/t/me'), key)).status).toBe(200);
    expect((await send('outage, uncached', http.get('/t/me'), quiet.body.key)).status).toBe(503);
    expect((await send('outage, management', http.get(`/api-keys/${quiet.body.apiKey.id}`))).status).toBe(503);
    await app.get(ApiKeyService).revoke(id).catch((error: unknown) => thrown.push(inspect(error, { depth: 8 })));
    await app.get(ApiKeyService).flushUsage();
    await relay.start();
    for (let i = 0; i < 50 && (await send('recovering', http.get('/t/me'), quiet.body.key)).status !== 200; i++) await sleep(100);
    expect((await send('recovered', http.get('/t/me'), quiet.body.key)).status).toBe(200);

    // Redis goes away: the primary answers; the cache reports its outage; a write is
    // refused (it could not hold the cached copies back), and its 503 carries no secret.
    proxy.down();
    expect((await send('redis down', http.get('/t/me'), quiet.body.key)).status).toBe(200);
    expect((await send('redis down, update', http.patch(`/api-keys/${quiet.body.apiKey.id}`).send({ name: 'q2' }))).status).toBe(503);
    proxy.restore();
    await pollUntil(() => stack.redisCache.cacheAvailable, 'the Redis cache to come back');

    // Rotate: the new key is in this one response; the old one keeps working for the grace period.
    const rotated = await send('rotate', http.post(`/api-keys/${id}/rotate`).send({ gracePeriodMs: 60_000 }));
    expect(rotated.status).toBe(201);
    const next: string = rotated.body.key;
    keys.set(next, 'rotate');
    expect((await send('old in grace', http.get('/t/me'), key)).status).toBe(200);
    expect((await send('new key', http.get('/t/me'), next)).status).toBe(200);

    // Revoke, revoke again, expiry, delete.
    expect((await send('revoke', http.post(`/api-keys/${id}/revoke`))).status).toBe(200);
    expect((await send('revoked', http.get('/t/me'), key)).status).toBe(401);
    expect((await send('revoke again', http.post(`/api-keys/${id}/revoke`))).status).toBe(200);
    // On a fake Date: the expiry is reached by a step of the clock, never by a slow request.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      const expiresAt = new Date(Date.now() + 400);
      const short = await send(
        'issue short',
        http.post('/api-keys').send({ ownerId: 'tenant-2', name: 'short', scopes: ['things:read'], expiresAt: expiresAt.toISOString() }),
      );
      expect(short.status).toBe(201);
      keys.set(short.body.key, 'issue short');
      expect((await send('short, live', http.get('/t/me'), short.body.key)).status).toBe(200);
      vi.setSystemTime(expiresAt);
      expect((await send('short, expired', http.get('/t/me'), short.body.key)).status).toBe(401);
    } finally {
      vi.useRealTimers();
    }
    const nextId: string = rotated.body.apiKey.id;
    expect((await send('delete', http.delete(`/api-keys/${nextId}`))).status).toBe(204);
    expect((await send('deleted', http.get('/t/me'), next)).status).toBe(401);
    expect((await send('get deleted', http.get(`/api-keys/${nextId}`))).status).toBe(404);
    await app.get(ApiKeyService).flushUsage();

    // What is at rest now: every row of every table, every Redis key and value of the deployment.
    const tables = await db.query<{ table_name: string }>(
      "select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'",
    );
    pgRows = [];
    for (const { table_name } of tables) {
      const rows = await db.query<{ row: string }>(`select row_to_json(t)::text as row from "${table_name}" t`);
      pgRows.push(...rows.map((r) => `${table_name}: ${r.row}`));
    }
    storedHashes = (await db.query<{ key_hash: string }>('select key_hash from api_keys')).map((r) => r.key_hash);
    redisEntries = [];
    for (const name of await scanKeys(admin, deployment)) redisEntries.push(`${name} => ${await readRedisValue(admin, name)}`);
  });

  it('captured real data, so the searches below can fail', () => {
    const logs = [...logger.lines, ...output.lines].join('\n');
    expect(logs).toContain('answering 503'); // the guard's outage report
    expect(logs).toContain('The Redis cache is unavailable'); // the cache's outage report
    expect(logs).toContain('The Redis cache is back');
    expect(thrown.join('\n')).toContain('BackendUnavailableError');
    expect(exceptions.length).toBeGreaterThan(5); // the guard's 401, 403 and 503 answers
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['api-key.issued', 'api-key.updated', 'api-key.rotated', 'api-key.revoked', 'api-key.deleted', 'api-key.authentication-denied']),
    );
    expect(busMessages.length).toBeGreaterThan(5);
    // Five keys issued, one deleted: the table really is the one holding them, peppered.
    expect(storedHashes.length).toBe(4);
    for (const [key, allowedIn] of keys) {
      if (allowedIn !== 'rotate') expect(storedHashes).toContain(hashOf(key));
    }
    expect(pgRows.some((row) => row.includes('"name":"renamed"'))).toBe(true);
    // Cache entries and their generations were read, values included.
    expect(redisEntries.some((entry) => entry.includes(':r => string') && entry.includes('tenant-1'))).toBe(true);
    expect(redisEntries.some((entry) => entry.includes(':g => string'))).toBe(true);
    expect(exchanges.length).toBeGreaterThan(30);
  });

  it('finds no plaintext key, or part of one, in PostgreSQL, Redis, pub/sub, logs, exceptions, events or any other response', () => {
    const leaks: string[] = [];
    const logs = [...logger.lines, ...output.lines];
    for (const [key, allowedIn] of keys) {
      const secret = key.slice(PREFIX.length, -6);
      const needles = { key, secret, 'half of the secret': secret.slice(10, 32) };
      for (const [what, needle] of Object.entries(needles)) {
        const where = (label: string, texts: string[]) =>
          texts.forEach((text, i) => text.includes(needle) && leaks.push(`${what} of the ${allowedIn ?? 'admin'} key in ${label} #${i}`));
        where('PostgreSQL', pgRows);
        where('Redis', redisEntries);
        where('pub/sub', busMessages);
        where('the logs', logs);
        where('an exception', [...exceptions, ...thrown]);
        where('an event', events.map((e) => inspect(e, { depth: 8 })));
        for (const x of exchanges) {
          if (x.headers.includes(needle)) leaks.push(`${what} in the headers of "${x.label}"`);
          if (x.body.includes(needle) && x.label !== allowedIn) leaks.push(`${what} of the ${allowedIn ?? 'admin'} key in the body of "${x.label}"`);
        }
      }
    }
    expect(leaks).toEqual([]);
  });

  it('finds no key hash in Redis at rest, pub/sub, logs, exceptions, events or responses', () => {
    const leaks: string[] = [];
    const logs = [...logger.lines, ...output.lines];
    for (const [key, allowedIn] of keys) {
      for (const [what, needle] of Object.entries({ 'peppered hash': hashOf(key), 'SHA-256': createHash('sha256').update(key).digest('hex') })) {
        const where = (label: string, texts: string[]) =>
          texts.forEach((text, i) => text.includes(needle) && leaks.push(`${what} of the ${allowedIn ?? 'admin'} key in ${label} #${i}`));
        where('Redis', redisEntries);
        where('pub/sub', busMessages);
        where('the logs', logs);
        where('an exception', [...exceptions, ...thrown]);
        where('an event', events.map((e) => inspect(e, { depth: 8 })));
        where('a response', exchanges.map((x) => x.headers + x.body));
      }
    }
    expect(leaks).toEqual([]);
  });
});
