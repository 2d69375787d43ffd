import type { INestApplication } from '@nestjs/common';
import type { MikroORM } from '@mikro-orm/postgresql';
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';

const ADMIN = 'api-keys:admin';
const PLAINTEXT = /rot_[0-9A-Za-z]{40,}/;
const RACERS = 20;

// Real PostgreSQL, a database of this file's own, dropped at the end.
let db: TestDatabase;
const orms: MikroORM[] = [];
/** Two instances of one deployment: one on Express, one on Fastify, each with its own ORM and pool. */
const apps: INestApplication[] = [];
let service: ApiKeyService;
let adminKey: string;

beforeAll(async () => {
  db = await createTestDatabase('rotate_once');
  for (const adapter of ADAPTERS) {
    const orm = await initOrm(db.url);
    orms.push(orm);
    // Created once, before either instance starts: two instances would race to create the table.
    if (orms.length === 1) await new MikroOrmBackend(orm).ensureSchema();
    apps.push(
      await bootApp(adapter, [
        ApiAuthModule.forRoot({ prefix: 'rot_', backend: new MikroOrmBackend(orm), routes: { path: 'api-keys' } }),
      ]),
    );
  }
  service = apps[0]!.get(ApiKeyService);
  adminKey = (await service.issue({ ownerId: 'ops', name: 'admin', scopes: [ADMIN] })).key;
});
afterAll(async () => {
  for (const app of apps) await app.close();
  // The application owns its ORMs; the backend does not close them.
  for (const orm of orms) await orm.close();
  await db?.drop();
});

const rotate = (app: INestApplication, id: string, gracePeriodMs: number) =>
  request(app.getHttpServer()).post(`/api-keys/${id}/rotate`).set('X-API-Key', adminKey).send({ gracePeriodMs });
const me = (app: INestApplication, key: string) => request(app.getHttpServer()).get('/t/me').set('X-API-Key', key);

it.each([0, 60_000])(
  `${RACERS} concurrent POST /:id/rotate on two instances, grace %i ms: one 201, every other 409 already_rotated, one replacement row`,
  async (gracePeriodMs) => {
    const ownerId = `customer-${gracePeriodMs}`;
    const old = await service.issue({ ownerId, name: 'contested', scopes: ['read'] });

    const responses = await Promise.all(
      Array.from({ length: RACERS }, (_, i) => rotate(apps[i % 2]!, old.apiKey.id, gracePeriodMs)),
    );
    expect(responses.map((r) => r.status).sort()).toEqual([201, ...Array<number>(RACERS - 1).fill(409)]);
    const winner = responses.find((r) => r.status === 201)!.body;
    expect(winner.apiKey).toMatchObject({ ownerId, scopes: ['read'], rotatedFromId: old.apiKey.id });
    for (const res of responses.filter((r) => r.status === 409)) {
      expect(res.body).toEqual({
        statusCode: 409,
        error: 'Conflict',
        code: 'already_rotated',
        message: expect.any(String),
        replacementId: winner.apiKey.id,
      });
      expect(res.text).not.toMatch(PLAINTEXT);
    }

    // In the shared table: one row replaces the old key, and the old key ends when the winner said.
    const linked = await db.query<{ id: string }>('select id from api_keys where rotated_from_id = ?', [old.apiKey.id]);
    expect(linked.map((row) => row.id)).toEqual([winner.apiKey.id]);
    const [row] = await db.query<{ expires_at: Date }>('select expires_at from api_keys where id = ?', [old.apiKey.id]);
    expect(row!.expires_at.toISOString()).toBe(winner.previous.expiresAt);
    expect(await service.countByOwner(ownerId)).toBe(2);

    for (const app of apps) {
      expect((await me(app, winner.key).expect(200)).body.apiKey.id).toBe(winner.apiKey.id);
      if (gracePeriodMs === 0) expect((await me(app, old.key).expect(401)).body.code).toBe('expired_api_key');
      else expect((await me(app, old.key).expect(200)).body.apiKey.id).toBe(old.apiKey.id);
      // A later rotation, a retried request say, gets the same answer from either instance.
      expect((await rotate(app, old.apiKey.id, gracePeriodMs).expect(409)).body.replacementId).toBe(winner.apiKey.id);
    }
  },
);
