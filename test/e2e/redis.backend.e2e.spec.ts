import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { closedPort, connectRedis, deleteNamespace, scanKeys, uniqueNamespace } from '../fixtures/redis.js';
import { CapturingLogger } from '../fixtures/log-capture.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;

/** Every value stored under the namespace, whatever the key's type, as one string. */
async function dumpNamespace(client: Client, namespace: string): Promise<string> {
  const parts: string[] = [];
  for (const key of await scanKeys(client, namespace)) {
    const type = await client.type(key);
    parts.push(key);
    if (type === 'hash') parts.push(...Object.entries(await client.hGetAll(key)).flat());
    else if (type === 'string') parts.push((await client.get(key)) ?? '');
    else if (type === 'zset') parts.push(...(await client.zRange(key, 0, -1)));
    else if (type === 'set') parts.push(...(await client.sMembers(key)));
    else throw new Error(`unexpected ${type} key in the namespace`);
  }
  return parts.join('\n');
}

describe.each(ADAPTERS.flatMap((adapter) => ([2, 3] as const).map((layout) => [adapter, layout] as const)))('RedisBackend behind ApiKeyGuard over %s (layout %i)', (adapter, layout) => {
  let client: Client;
  let namespace: string;
  let app: INestApplication;
  let service: ApiKeyService;

  beforeAll(async () => {
    client = await connectRedis();
    namespace = uniqueNamespace(`redis-backend-e2e-${adapter}`);
    app = await bootApp(adapter, [
      ApiAuthModule.forRoot({ prefix: 'test_', backend: new RedisBackend(client, { namespace, layout }) }),
    ]);
    service = app.get(ApiKeyService);
  });
  afterAll(async () => {
    await app?.close();
    await deleteNamespace(client, namespace);
    await client.close();
  });

  it('issues, verifies and revokes through the guard', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'user-redis', name: 'e2e', scopes: ['things:read'] });
    const me = await request(app.getHttpServer()).get('/t/me').set('X-API-Key', key).expect(200);
    expect(me.body.ownerId).toBe('user-redis');
    expect(me.body.apiKey.id).toBe(apiKey.id);
    expect(me.body.apiKey.keyHash).toBeUndefined();
    await request(app.getHttpServer()).get('/t/me').set('Authorization', `Bearer ${key}`).expect(200);

    const scoped = await request(app.getHttpServer()).get('/t/write').set('X-API-Key', key).expect(403);
    expect(scoped.body.code).toBe('insufficient_scope');

    await service.revoke(apiKey.id);
    const revoked = await request(app.getHttpServer()).get('/t/me').set('X-API-Key', key).expect(401);
    expect(revoked.body.code).toBe('revoked_api_key');
  });

  it('answers 401 invalid_api_key for a well-formed key Redis does not hold', async () => {
    const res = await request(app.getHttpServer()).get('/t/me').set('X-API-Key', service.format.generate()).expect(401);
    expect(res.body.code).toBe('invalid_api_key');
  });

  it('stores no plaintext key anywhere in Redis over a full lifecycle', async () => {
    const first = await service.issue({ ownerId: 'user-scan', name: 'scan', scopes: ['a'], metadata: { plan: 'pro' } });
    await request(app.getHttpServer()).get('/t/me').set('X-API-Key', first.key).expect(200);
    await service.flushUsage();
    expect((await service.get(first.apiKey.id))?.lastUsedAt).toBeInstanceOf(Date);
    await service.update(first.apiKey.id, { name: 'renamed', scopes: ['a', 'b'] });
    const rotated = await service.rotate(first.apiKey.id, { gracePeriodMs: 60_000 });
    await request(app.getHttpServer()).get('/t/me').set('X-API-Key', rotated.key).expect(200);
    await request(app.getHttpServer()).get('/t/me').set('X-API-Key', first.key).expect(200);
    await service.revoke(rotated.apiKey.id);
    const gone = await service.issue({ ownerId: 'user-scan', name: 'deleted' });
    await service.delete(gone.apiKey.id);
    await service.flushUsage();

    const dump = await dumpNamespace(client, namespace);
    // The dump really holds the records: their ids and their hashes are in it...
    const stored = await new RedisBackend(client, { namespace, layout }).getById(first.apiKey.id);
    expect(dump).toContain(first.apiKey.id);
    expect(dump).toContain(stored!.keyHash);
    // ...and no key, nor its secret part without the prefix, nor anything of the deleted one.
    for (const { key } of [first, rotated, gone]) {
      expect(dump).not.toContain(key);
      expect(dump).not.toContain(key.slice('test_'.length));
    }
    expect(dump).not.toContain(gone.apiKey.id);
  });

  it('leaves the client it was given open when the app closes', async () => {
    const other = await bootApp(adapter, [
      ApiAuthModule.forRoot({ prefix: 'test_', backend: new RedisBackend(client, { namespace }) }),
    ]);
    await other.close();
    expect(client.isOpen).toBe(true);
    expect(await client.ping()).toBe('PONG');
  });
});

describe.each(ADAPTERS)('RedisBackend unreachable behind ApiKeyGuard over %s', (adapter) => {
  let client: ReturnType<typeof createClient>;
  let app: INestApplication;
  let service: ApiKeyService;
  // The outage is logged as an error on purpose here: kept and asserted, not printed.
  let logs: CapturingLogger;

  beforeAll(async () => {
    client = createClient({
      url: `redis://127.0.0.1:${await closedPort()}`,
      disableOfflineQueue: true,
      socket: { connectTimeout: 300, reconnectStrategy: false },
    });
    client.on('error', () => undefined);
    await client.connect().catch(() => undefined);
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'test_', backend: new RedisBackend(client) })]);
    logs = new CapturingLogger();
    app.useLogger(logs);
    service = app.get(ApiKeyService);
  });
  afterAll(() => app?.close());

  it('answers 503 backend_unavailable, never 200 or 401', async () => {
    const res = await request(app.getHttpServer()).get('/t/me').set('X-API-Key', service.format.generate()).expect(503);
    expect(res.body.code).toBe('backend_unavailable');
    expect(res.headers['retry-after']).toBe('1');
    expect(logs.lines.filter((line) => line.startsWith('[error]'))).toEqual([
      expect.stringMatching(/^\[error\] The API key backend is unavailable; answering 503: Redis could not complete getByHash/),
    ]);
  });
});
