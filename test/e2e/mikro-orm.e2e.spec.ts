import { createHash } from 'node:crypto';
import { Module, type INestApplication } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { API_KEY_BACKEND, ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';

const PREFIX = 'pg_';
let db: TestDatabase;
/** Every plaintext key this file mints, to search the table for afterwards. */
const issuedKeys: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase('e2e');
});
afterAll(async () => {
  await db?.drop();
});

interface KeyRow {
  id: string;
  owner_id: string;
  key_hash: string;
  revoked_at: Date | null;
  expires_at: Date | null;
  last_used_at: Date | null;
  rotated_from_id: string | null;
}

const rowOf = async (id: string) => (await db.query<KeyRow>('select * from api_keys where id = ?', [id]))[0];

describe.each(ADAPTERS)('MikroOrmBackend behind the guard over %s', (adapter) => {
  let app: INestApplication;
  let orm: MikroORM;
  let service: ApiKeyService;
  const owner = `owner-${adapter}`;

  // How an application provides its ORM without @mikro-orm/nestjs: a provider keyed
  // by the MikroORM class. The application owns it, so the test (not the library) closes it.
  @Module({ providers: [{ provide: MikroORM, useFactory: () => orm }], exports: [MikroORM] })
  class OrmModule {}

  const issue = async (input: Parameters<ApiKeyService['issue']>[0]) => {
    const issued = await service.issue(input);
    issuedKeys.push(issued.key);
    return issued;
  };
  const call = (key: string) => request(app.getHttpServer()).get('/t/me').set('X-API-Key', key);

  beforeAll(async () => {
    orm = await initOrm(db.url);
    app = await bootApp(adapter, [
      ApiAuthModule.forRootAsync({
        imports: [OrmModule],
        inject: [MikroORM],
        useFactory: (injected: MikroORM) => ({
          prefix: PREFIX,
          backend: new MikroOrmBackend(injected, { ensureSchema: true }),
        }),
      }),
    ]);
    service = app.get(ApiKeyService);
  });
  afterAll(async () => {
    await app?.close();
    await orm?.close();
  });

  it('resolves the MikroOrmBackend from the injected ORM, whose onModuleInit created the table', async () => {
    expect(app.get(API_KEY_BACKEND)).toBeInstanceOf(MikroOrmBackend);
    // No request has run yet in this app: the table exists because start-up made it.
    expect(await db.query("select 1 from information_schema.tables where table_name = 'api_keys'")).toHaveLength(1);
  });

  it('issues a key stored as a SHA-256 row, which then verifies over HTTP', async () => {
    const { key, apiKey } = await issue({ ownerId: owner, name: 'ci', scopes: ['things:read'], metadata: { plan: 'pro' } });
    const row = await rowOf(apiKey.id);
    expect(row?.owner_id).toBe(owner);
    expect(row?.key_hash).toBe(createHash('sha256').update(key).digest('hex'));

    const res = await call(key).expect(200);
    expect(res.body.ownerId).toBe(owner);
    expect(res.body.apiKey.id).toBe(apiKey.id);
    expect(res.body.apiKey.metadata).toEqual({ plan: 'pro' });
    expect(res.body.apiKey.keyHash).toBeUndefined();
    expect(await service.verify(key)).toMatchObject({ id: apiKey.id, ownerId: owner });
  });

  it('records lastUsedAt in PostgreSQL after a verified call', async () => {
    const { key, apiKey } = await issue({ ownerId: owner, name: 'usage' });
    expect((await rowOf(apiKey.id))?.last_used_at).toBeNull();
    await call(key).expect(200);
    await service.flushUsage();
    expect((await rowOf(apiKey.id))?.last_used_at).toBeInstanceOf(Date);
  });

  it('refuses an unknown key of the right format with 401 invalid_api_key', async () => {
    const res = await call(service.format.generate()).expect(401);
    expect(res.body.code).toBe('invalid_api_key');
  });

  it('expires a key: 200 before expiresAt, 401 expired_api_key after', async () => {
    // On a fake Date: the expiry is reached by a step of the clock, never by a slow request.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      const expiresAt = new Date(Date.now() + 400);
      const { key } = await issue({ ownerId: owner, name: 'short', expiresAt });
      await call(key).expect(200);
      vi.setSystemTime(expiresAt.getTime() - 1);
      await call(key).expect(200);
      vi.setSystemTime(expiresAt);
      const res = await call(key).expect(401);
      expect(res.body.code).toBe('expired_api_key');
    } finally {
      vi.useRealTimers();
    }
  });

  it('revokes a key: 401 revoked_api_key, and the row keeps revoked_at', async () => {
    const { key, apiKey } = await issue({ ownerId: owner, name: 'to revoke' });
    await call(key).expect(200);
    await service.revoke(apiKey.id);
    const res = await call(key).expect(401);
    expect(res.body.code).toBe('revoked_api_key');
    expect((await rowOf(apiKey.id))?.revoked_at).toBeInstanceOf(Date);
  });

  it('rotates a key: with a grace period both work; without one the old key stops at once', async () => {
    const { key: oldKey, apiKey: old } = await issue({ ownerId: owner, name: 'rotating', scopes: ['a'] });
    const graceful = await service.rotate(old.id, { gracePeriodMs: 60_000 });
    issuedKeys.push(graceful.key);
    await call(oldKey).expect(200);
    const res = await call(graceful.key).expect(200);
    expect(res.body.apiKey.scopes).toEqual(['a']);
    expect((await rowOf(graceful.apiKey.id))?.rotated_from_id).toBe(old.id);

    const abrupt = await service.rotate(graceful.apiKey.id, { gracePeriodMs: 0 });
    issuedKeys.push(abrupt.key);
    expect((await call(graceful.key).expect(401)).body.code).toBe('expired_api_key');
    await call(abrupt.key).expect(200);
  });

  it('200 concurrent issue calls give 200 distinct keys and 200 rows', async () => {
    const ownerId = `${owner}-burst`;
    const issued = await Promise.all(Array.from({ length: 200 }, (_, i) => issue({ ownerId, name: `burst ${i}` })));
    expect(new Set(issued.map((i) => i.key)).size).toBe(200);
    expect(new Set(issued.map((i) => i.apiKey.id)).size).toBe(200);
    const [{ count }] = (await db.query<{ count: number }>('select count(*)::int as count from api_keys where owner_id = ?', [ownerId])) as [
      { count: number },
    ];
    expect(count).toBe(200);
    expect((await service.listPage(ownerId, { limit: 150 })).total).toBe(200);
  });

  it('a revoke racing 100 usage writes leaves the key revoked', async () => {
    const backend = app.get<MikroOrmBackend>(API_KEY_BACKEND);
    const { key, apiKey } = await issue({ ownerId: owner, name: 'raced' });
    const base = Date.now();
    const usage = Array.from({ length: 100 }, (_, i) => {
      const at = new Date(base + i);
      return backend.recordUsage(apiKey.id, at, at);
    });
    await Promise.all([...usage.slice(0, 50), service.revoke(apiKey.id), ...usage.slice(50)]);
    expect((await rowOf(apiKey.id))?.revoked_at).toBeInstanceOf(Date);
    expect((await call(key).expect(401)).body.code).toBe('revoked_api_key');
  });

  it('never closes the ORM it was given', async () => {
    const other = await initOrm(db.url);
    // MikroORM 7 connects on first use, not in init().
    await other.em.fork().getConnection().execute('select 1');
    @Module({ providers: [{ provide: MikroORM, useFactory: () => other }], exports: [MikroORM] })
    class OtherOrmModule {}
    const shortLived = await bootApp(adapter, [
      ApiAuthModule.forRootAsync({
        imports: [OtherOrmModule],
        inject: [MikroORM],
        useFactory: (injected: MikroORM) => ({ backend: new MikroOrmBackend(injected) }),
      }),
    ]);
    await shortLived.close();
    try {
      expect(await other.isConnected()).toBe(true);
    } finally {
      await other.close();
    }
  });
});

describe('the api_keys table after every e2e test above', () => {
  it('holds no plaintext key, nor any 8-character piece of a secret, in any column', async () => {
    expect(issuedKeys.length).toBeGreaterThan(400);
    const rows = await db.query<{ row: string }>('select row_to_json(t)::text as row from api_keys t');
    expect(rows.length).toBeGreaterThanOrEqual(issuedKeys.length);
    const dump = rows.map((r) => r.row).join('\n');
    // Every 8-character window of the dump, so each secret piece is one lookup.
    const windows = new Set<string>();
    for (let i = 0; i + 8 <= dump.length; i++) windows.add(dump.slice(i, i + 8));
    for (const key of issuedKeys) {
      expect(dump).not.toContain(key);
      const secret = key.slice(PREFIX.length);
      for (let i = 0; i + 8 <= secret.length; i++) {
        if (windows.has(secret.slice(i, i + 8))) throw new Error(`a piece of a secret is stored in the table (offset ${i})`);
      }
    }
    // Only the hash is there, and it is the hash of a key that was issued.
    const hashes = new Set(issuedKeys.map((k) => createHash('sha256').update(k).digest('hex')));
    const stored = await db.query<{ key_hash: string }>('select key_hash from api_keys');
    expect(stored.filter((r) => hashes.has(r.key_hash)).length).toBe(issuedKeys.length);
  });
});
