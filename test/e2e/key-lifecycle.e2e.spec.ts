import SwaggerParser from '@apidevtools/swagger-parser';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder } from '@nestjs/swagger';
import { ApiAuthModule, ApiKeyService, MemoryBackend, type ApiKeyBackend } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { createApiAuthDocument } from 'nestjs-api-auth/swagger';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, bootApp, type Adapter } from '../fixtures/app.js';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';

const ADMIN = 'api-keys:admin';
const SELF = 'api-keys:self';
const DAY = 86_400_000;
const DEFAULT_POLICY = { rateLimits: [{ name: 'default', limit: 100, windowMs: 60_000 }] };

let db: TestDatabase;
let orm: MikroORM;
let redis: Awaited<ReturnType<typeof connectRedis>>;
const namespace = uniqueNamespace('key-lifecycle');
let tables = 0;
const STORES: Array<[string, () => ApiKeyBackend]> = [
  ['memory', () => new MemoryBackend()],
  ['redis', () => new RedisBackend(redis, { namespace: `${namespace}${++tables}:` })],
  ['redis (layout 3)', () => new RedisBackend(redis, { namespace: `${namespace}${++tables}:`, layout: 3 })],
  ['postgres', () => new MikroOrmBackend(orm, { tableName: `lifecycle_${++tables}`, ensureSchema: true })],
];
const CASES = STORES.flatMap(([store, make]) => ADAPTERS.map((adapter) => [adapter, store, make] as [Adapter, string, () => ApiKeyBackend]));

beforeAll(async () => {
  redis = await connectRedis();
  db = await createTestDatabase('key_lifecycle');
  orm = await initOrm(db.url);
});
afterAll(async () => {
  await deleteNamespace(redis, namespace);
  await redis.close();
  await orm.close(true);
  await db.drop();
});

describe.each(CASES)('keyLifetime, defaultScopes and defaultPolicy over %s on %s', (adapter, _store, makeBackend) => {
  let app: INestApplication;
  let service: ApiKeyService;
  let admin: string;
  const http = () => request(app.getHttpServer());
  const as = (key: string) => ({ 'X-API-Key': key });
  const inDays = (days: number) => new Date(Date.now() + days * DAY).toISOString();

  beforeAll(async () => {
    app = await bootApp(adapter, [
      ApiAuthModule.forRoot({
        prefix: 'lc_',
        backend: makeBackend(),
        routes: { path: 'api-keys' },
        keyLifetime: { defaultMs: 30 * DAY, maxMs: 90 * DAY },
        defaultScopes: ['reports:read', 'reports:write'],
        defaultPolicy: DEFAULT_POLICY,
      }),
    ]);
    service = app.get(ApiKeyService);
    admin = (await service.issue({ ownerId: 'ops', name: 'admin', scopes: [ADMIN], expiresAt: inDays(80) })).key;
  });
  afterAll(() => app?.close());

  it('issues with the defaults when the body names no scopes, policy or expiry', async () => {
    const before = Date.now();
    const res = await http().post('/api-keys').set(as(admin)).send({ ownerId: 'acme', name: 'defaults' }).expect(201);
    expect(res.body.apiKey.scopes).toEqual(['reports:read', 'reports:write']);
    expect(res.body.apiKey.policy).toEqual(DEFAULT_POLICY);
    const expiresAt = Date.parse(res.body.apiKey.expiresAt);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 30 * DAY);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 30 * DAY);
    const explicit = await http()
      .post('/api-keys')
      .set(as(admin))
      .send({ ownerId: 'acme', name: 'explicit', scopes: ['reports:read'], policy: null, expiresAt: inDays(2) })
      .expect(201);
    expect(explicit.body.apiKey.scopes).toEqual(['reports:read']);
    expect(explicit.body.apiKey.policy).toBeNull();
  });

  it('answers 400 validation_failed for an expiry past keyLifetime.maxMs, or none, on issue and update', async () => {
    for (const expiresAt of [inDays(91), null]) {
      const res = await http().post('/api-keys').set(as(admin)).send({ ownerId: 'acme', name: 'long', expiresAt }).expect(400);
      expect(res.body).toMatchObject({ code: 'validation_failed', field: 'expiresAt' });
    }
    const { apiKey } = await service.issue({ ownerId: 'acme', name: 'patched' });
    for (const expiresAt of [inDays(91), null]) {
      const res = await http().patch(`/api-keys/${apiKey.id}`).set(as(admin)).send({ expiresAt }).expect(400);
      expect(res.body).toMatchObject({ code: 'validation_failed', field: 'expiresAt' });
    }
    const within = inDays(60);
    const ok = await http().patch(`/api-keys/${apiKey.id}`).set(as(admin)).send({ expiresAt: within }).expect(200);
    expect(ok.body.expiresAt).toBe(within);
    expect((await service.get(apiKey.id))?.version).toBe(2);
  });

  it('gives a self-service key only the default scopes it holds, and holds its keys to the maximum too', async () => {
    const self = await service.issue({ ownerId: 'tenant', name: 'self', scopes: [SELF, 'reports:read'], expiresAt: inDays(10) });
    const res = await http().post('/api-keys').set(as(self.key)).send({ name: 'child' }).expect(201);
    expect(res.body.apiKey.scopes).toEqual(['reports:read']);
    // No later than the key that minted it.
    expect(res.body.apiKey.expiresAt).toBe(self.apiKey.expiresAt!.toISOString());
    const escalation = await http().post('/api-keys').set(as(self.key)).send({ name: 'child', scopes: ['reports:write'] }).expect(403);
    expect(escalation.body.code).toBe('scope_escalation');
    expect(await service.countByOwner('tenant')).toBe(2);
  });

  it('documents the optional scopes and the lifetime in OpenAPI, and the document validates', async () => {
    const document = createApiAuthDocument(app, new DocumentBuilder().setTitle('t').setVersion('1').build());
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeTruthy();
    const issue = document.components!.schemas!.IssueApiKeyRequest as { required: string[]; properties: Record<string, { description?: string }> };
    expect(issue.required).toEqual(['name']);
    expect(issue.properties.scopes!.description).toContain('Default: "reports:read", "reports:write"');
    expect(issue.properties.expiresAt!.description).toContain(`At most ${90 * DAY} ms from now`);
  });
});
