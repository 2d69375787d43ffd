import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, MemoryRateLimiter, type ApiAuthModuleOptions, type ApiKeyEvent } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { ADAPTERS, bootApp, type Adapter } from '../fixtures/app.js';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { makeSetup, PolicyController, SETUP_NAMES, type Setup } from '../fixtures/rate-limit.setups.js';

const ADMIN = 'api-keys:admin';
const SELF = 'api-keys:self';
const DAY = 86_400_000;

/**
 * The quota balance seen and changed from outside: the `X-Quota-*` headers on guarded
 * routes, `quota` on `GET /api-keys/:id`, `POST /api-keys/:id/quota`, and
 * `ApiKeyService.consume` spending from the same counters as the guard.
 */
function describeBalance(label: string, adapter: Adapter, options: () => Promise<{ auth: ApiAuthModuleOptions; cleanup: () => Promise<void> }>) {
  describe(`quota balances over ${adapter} on ${label}`, () => {
    let app: INestApplication;
    let service: ApiKeyService;
    let cleanup: () => Promise<void>;
    let adminKey: string;
    const events: ApiKeyEvent[] = [];
    const http = () => request(app.getHttpServer());
    const as = (key: string) => ({ 'X-API-Key': key });

    beforeAll(async () => {
      const made = await options();
      cleanup = made.cleanup;
      app = await bootApp(
        adapter,
        [ApiAuthModule.forRoot({ prefix: 'qb_', ...made.auth, routes: { path: 'api-keys' }, onEvent: (e) => events.push(e) })],
        { controllers: [PolicyController] },
      );
      service = app.get(ApiKeyService);
      adminKey = (await service.issue({ ownerId: 'ops', name: 'admin', scopes: [ADMIN] })).key;
    });
    afterAll(async () => {
      await app?.close();
      await cleanup?.();
    });

    it('answers each call with X-Quota-Remaining, and X-Quota-Reset only for a quota that refills', async () => {
      const { key } = await service.issue({ ownerId: 'c', name: 'never', policy: { quota: { limit: 12 } } });
      const first = await http().get('/p/ping').set(as(key));
      expect(first.status).toBe(200);
      expect(first.headers['x-quota-remaining']).toBe('11');
      expect(first.headers['x-quota-reset']).toBeUndefined();
      expect((await http().get('/p/expensive').set(as(key))).headers['x-quota-remaining']).toBe('6');
      expect((await http().get('/p/expensive').set(as(key))).headers['x-quota-remaining']).toBe('1');
      const refused = await http().get('/p/expensive').set(as(key));
      expect(refused.status).toBe(429);
      expect(refused.body.code).toBe('quota_exhausted');
      expect(refused.headers['x-quota-remaining']).toBe('1');

      const daily = await service.issue({ ownerId: 'c', name: 'daily', policy: { quota: { limit: 5, refillIntervalMs: DAY } } });
      const res = await http().get('/p/ping').set(as(daily.key));
      expect(res.headers['x-quota-remaining']).toBe('4');
      const reset = Number(res.headers['x-quota-reset']);
      expect(reset).toBeGreaterThanOrEqual(1);
      expect(reset).toBeLessThanOrEqual(DAY / 1000);

      const plain = await service.issue({ ownerId: 'c', name: 'plain' });
      expect((await http().get('/p/ping').set(as(plain.key))).headers['x-quota-remaining']).toBeUndefined();
    });

    it('shows the balance on GET /api-keys/:id: what calls left, when it refills, null without a quota', async () => {
      const { key, apiKey } = await service.issue({ ownerId: 'c', name: 'shown', policy: { quota: { limit: 20, refillIntervalMs: DAY } } });
      await http().get('/p/expensive').set(as(key)).expect(200);
      const got = await http().get(`/api-keys/${apiKey.id}`).set(as(adminKey)).expect(200);
      expect(got.body.quota).toEqual({ limit: 20, remaining: 15, refillsAt: expect.any(String) });
      const midnight = Math.floor(Date.now() / DAY + 1) * DAY;
      expect(Math.abs(Date.parse(got.body.quota.refillsAt) - midnight)).toBeLessThan(60_000);
      // Reading spends nothing.
      expect((await http().get(`/api-keys/${apiKey.id}`).set(as(adminKey))).body.quota.remaining).toBe(15);

      const plain = await service.issue({ ownerId: 'c', name: 'plain' });
      expect((await http().get(`/api-keys/${plain.apiKey.id}`).set(as(adminKey))).body.quota).toBeNull();
    });

    it('sets and tops up the balance with POST /api-keys/:id/quota, emitting api-key.quota-changed', async () => {
      const { key, apiKey } = await service.issue({ ownerId: 'c', name: 'topped', policy: { quota: { limit: 2 } } });
      await http().get('/p/ping').set(as(key)).expect(200);
      await http().get('/p/ping').set(as(key)).expect(200);
      await http().get('/p/ping').set(as(key)).expect(429);

      const set = await http().post(`/api-keys/${apiKey.id}/quota`).set(as(adminKey)).send({ set: 3 });
      expect(set.status).toBe(200);
      expect(set.body).toMatchObject({ id: apiKey.id, quota: { limit: 2, remaining: 3, refillsAt: null } });
      expect(set.headers['cache-control']).toBe('no-store');
      const added = await http().post(`/api-keys/${apiKey.id}/quota`).set(as(adminKey)).send({ add: 2 });
      expect(added.body.quota.remaining).toBe(5);
      const statuses = [];
      for (let i = 0; i < 6; i++) statuses.push((await http().get('/p/ping').set(as(key))).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      expect(events.filter((e) => e.type === 'api-key.quota-changed' && e.apiKeyId === apiKey.id)).toEqual([
        expect.objectContaining({ change: { set: 3 }, remaining: 3, ownerId: 'c' }),
        expect.objectContaining({ change: { add: 2 }, remaining: 5, ownerId: 'c' }),
      ]);
    });

    it('keeps balance changes to the admin, and refuses bad bodies, keys without a quota and unknown ids', async () => {
      const self = await service.issue({ ownerId: 'c', name: 'self', scopes: [SELF], policy: { quota: { limit: 1 } } });
      const refused = await http().post(`/api-keys/${self.apiKey.id}/quota`).set(as(self.key)).send({ add: 1000 });
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ code: 'insufficient_scope', requiredScopes: [ADMIN] });

      for (const body of [{}, { set: 1, add: 1 }, { set: -1 }, { add: 1.5 }, { set: '5' }, { remaining: 5 }]) {
        const res = await http().post(`/api-keys/${self.apiKey.id}/quota`).set(as(adminKey)).send(body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body.code).toBe('validation_failed');
      }
      const plain = await service.issue({ ownerId: 'c', name: 'plain' });
      const none = await http().post(`/api-keys/${plain.apiKey.id}/quota`).set(as(adminKey)).send({ set: 1 });
      expect(none.status).toBe(400);
      expect(none.body.field).toBe('policy.quota');
      await http().post('/api-keys/00000000-0000-4000-8000-000000000000/quota').set(as(adminKey)).send({ set: 1 }).expect(404);
    });

    it('consume() outside HTTP spends from the same counters as the guard', async () => {
      const { key } = await service.issue({ ownerId: 'c', name: 'worker', policy: { quota: { limit: 10 } } });
      await http().get('/p/expensive').set(as(key)).expect(200);
      expect(await service.consume(key, { cost: 4 })).toMatchObject({ ok: true, quota: { remaining: 1 } });
      expect((await http().get('/p/ping').set(as(key))).headers['x-quota-remaining']).toBe('0');
      expect(await service.consume(key)).toMatchObject({ ok: false, code: 'quota_exhausted', status: 429 });
    });
  });
}

for (const adapter of ADAPTERS) {
  for (const name of SETUP_NAMES) {
    describeBalance(`the ${name} setup`, adapter, async () => {
      const setup: Setup = await makeSetup(name, `quota-balance-${adapter}`);
      return { auth: setup.create(), cleanup: () => setup.cleanup() };
    });
  }
}

// PostgreSQL stores the keys; the balance lives in the limiter, as on every backend.
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('quota_balance');
});
afterAll(async () => {
  await db?.drop();
});
for (const adapter of ADAPTERS) {
  describeBalance('MikroORM (PostgreSQL)', adapter, async () => {
    const orm = await initOrm(db.url);
    const backend = new MikroOrmBackend(orm, { ensureSchema: true });
    return { auth: { backend, rateLimiter: new MemoryRateLimiter() }, cleanup: () => orm.close() };
  });
}
