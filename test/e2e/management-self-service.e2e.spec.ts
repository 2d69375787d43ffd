import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, MemoryBackend, type ApiKeyBackend } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { RedisBackend } from 'nestjs-api-auth/redis';
import type { MikroORM } from '@mikro-orm/postgresql';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { ADAPTERS, bootApp, type Adapter } from '../fixtures/app.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';

const ADMIN = 'api-keys:admin';
const SELF = 'api-keys:self';
const MINUTE = 60_000;
const HOUR = 3_600_000;

// Real Redis, one namespace for the file (a sub-namespace per app), removed afterwards.
let redis: Awaited<ReturnType<typeof connectRedis>>;
const namespace = uniqueNamespace('self-service');
let apps = 0;
/** The stores these checks run on; adding one is one line. */
const STORES: Array<[string, () => ApiKeyBackend]> = [
  ['memory', () => new MemoryBackend()],
  ['redis', () => new RedisBackend(redis, { namespace: `${namespace}${++apps}:` })],
  // One database for the file, a table per app.
  ['postgres', () => new MikroOrmBackend(orm, { tableName: `keys_${++apps}`, ensureSchema: true })],
];
const CASES = STORES.flatMap(([store, make]) => ADAPTERS.map((adapter) => [adapter, store, make] as [Adapter, string, () => ApiKeyBackend]));

let db: TestDatabase;
let orm: MikroORM;

beforeAll(async () => {
  redis = await connectRedis();
  db = await createTestDatabase('self_service');
  orm = await initOrm(db.url);
});
afterAll(async () => {
  await deleteNamespace(redis, namespace);
  await redis.close();
  await orm.close(true);
  await db.drop();
});

describe.each(CASES)('self-service rules over %s on the %s backend', (adapter, _store, makeBackend) => {
  let app: INestApplication;
  let service: ApiKeyService;
  let admin: string;
  let owner = 0;

  const http = () => request(app.getHttpServer());
  const as = (key: string) => ({ 'X-API-Key': key });
  const status = async (key: string) => (await http().get('/t/me').set(as(key))).status;
  /** A fresh owner with a self-service key of the given shape, so tests share nothing. */
  const selfKey = async (over: Parameters<ApiKeyService['issue']>[0] extends infer I ? Partial<I> : never = {}) => {
    const ownerId = `owner-${++owner}`;
    const issued = await service.issue({ ownerId, name: 'self', scopes: [SELF, 'reports:read'], environment: 'test', ...over });
    return { ...issued, ownerId };
  };
  const count = (ownerId: string) => service.countByOwner(ownerId);

  beforeAll(async () => {
    app = await bootApp(adapter, [
      ApiAuthModule.forRoot({
        prefix: 'ss_',
        environment: 'live',
        acceptEnvironments: ['live', 'test'],
        backend: makeBackend(),
        routes: { path: 'api-keys', maxGracePeriodMs: HOUR },
      }),
    ]);
    service = app.get(ApiKeyService);
    admin = (await service.issue({ ownerId: 'ops', name: 'admin', scopes: [ADMIN] })).key;
  });
  afterAll(() => app?.close());

  describe('rotation (issue item 2)', () => {
    it('refuses to rotate a sibling without a policy for a caller with a quota: 403 forbidden_policy, nothing minted', async () => {
      const self = await selfKey({ policy: { quota: { limit: 3 } } });
      const sibling = await service.issue({ ownerId: self.ownerId, name: 'open', scopes: ['reports:read'], environment: 'test' });
      const before = await count(self.ownerId);
      const res = await http().post(`/api-keys/${sibling.apiKey.id}/rotate`).set(as(self.key)).send({ gracePeriodMs: MINUTE });
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ statusCode: 403, code: 'forbidden_policy' });
      expect(res.body.key).toBeUndefined();
      expect(await count(self.ownerId)).toBe(before);
      expect((await service.get(sibling.apiKey.id))?.expiresAt).toBeNull();
    });

    it('refuses to rotate a sibling with a higher limit, or its own copy of the rules on its own counters', async () => {
      const policy = { rateLimits: [{ name: 'burst', limit: 5, windowMs: MINUTE }] };
      const self = await selfKey({ policy });
      for (const siblingPolicy of [{ rateLimits: [{ name: 'burst', limit: 6, windowMs: MINUTE }] }, policy]) {
        const sibling = await service.issue({ ownerId: self.ownerId, name: 's', scopes: ['reports:read'], environment: 'test', policy: siblingPolicy });
        const res = await http().post(`/api-keys/${sibling.apiKey.id}/rotate`).set(as(self.key)).send({});
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('forbidden_policy');
      }
    });

    it('refuses to rotate a live sibling from a test key: 403 forbidden_environment, no live key handed out', async () => {
      const self = await selfKey();
      const live = await service.issue({ ownerId: self.ownerId, name: 'live', scopes: ['reports:read'], environment: 'live' });
      const before = await count(self.ownerId);
      const res = await http().post(`/api-keys/${live.apiKey.id}/rotate`).set(as(self.key)).send({});
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden_environment');
      expect(res.text).not.toMatch(/ss_live_/);
      expect(await count(self.ownerId)).toBe(before);
    });

    it('refuses to rotate a sibling that outlives the caller: 403 forbidden_expiry', async () => {
      const self = await selfKey({ expiresAt: new Date(Date.now() + HOUR) });
      const forever = await service.issue({ ownerId: self.ownerId, name: 'forever', scopes: ['reports:read'], environment: 'test' });
      const res = await http().post(`/api-keys/${forever.apiKey.id}/rotate`).set(as(self.key)).send({});
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden_expiry');
    });

    it('rotates a key it minted: the replacement keeps the caller\'s policy, counters, environment and expiry', async () => {
      const policy = { rateLimits: [{ name: 'burst', limit: 4, windowMs: MINUTE }] };
      const self = await selfKey({ policy, expiresAt: new Date(Date.now() + HOUR) });
      const minted = await http().post('/api-keys').set(as(self.key)).send({ name: 'm', scopes: ['reports:read'] });
      expect(minted.status).toBe(201);
      const rotated = await http().post(`/api-keys/${minted.body.apiKey.id}/rotate`).set(as(self.key)).send({});
      expect(rotated.status).toBe(201);
      expect(rotated.body.apiKey).toMatchObject({ environment: 'test', policy, expiresAt: self.apiKey.expiresAt!.toISOString() });
      // Two calls of the caller's budget of four went to minting and rotating.
      expect([await status(rotated.body.key), await status(self.key), await status(rotated.body.key)]).toEqual([200, 200, 429]);
    });

    it('an admin may rotate any of them', async () => {
      const self = await selfKey({ policy: { quota: { limit: 3 } } });
      const live = await service.issue({ ownerId: self.ownerId, name: 'live', scopes: ['reports:read'], environment: 'live' });
      const res = await http().post(`/api-keys/${live.apiKey.id}/rotate`).set(as(admin)).send({});
      expect(res.status).toBe(201);
      expect(res.body.apiKey).toMatchObject({ environment: 'live', policy: null });
    });
  });

  describe('expiry (issue item 3)', () => {
    it('may not clear or extend its own expiry; may bring it forward', async () => {
      const expiresAt = new Date(Date.now() + HOUR);
      const self = await selfKey({ expiresAt });
      for (const body of [{ expiresAt: null }, { expiresAt: new Date(Date.now() + 2 * HOUR).toISOString() }]) {
        const res = await http().patch(`/api-keys/${self.apiKey.id}`).set(as(self.key)).send(body);
        expect(res.status, JSON.stringify(body)).toBe(403);
        expect(res.body.code).toBe('forbidden_expiry');
      }
      expect((await service.get(self.apiKey.id))?.expiresAt).toEqual(expiresAt);
      const sooner = new Date(Date.now() + HOUR / 2);
      const res = await http().patch(`/api-keys/${self.apiKey.id}`).set(as(self.key)).send({ expiresAt: sooner.toISOString() });
      expect(res.status).toBe(200);
      expect(res.body.expiresAt).toBe(sooner.toISOString());
    });

    it('may not revive a rotated-out sibling past its grace period, nor extend the grace period', async () => {
      const self = await selfKey();
      for (const gracePeriodMs of [0, MINUTE]) {
        const sibling = await service.issue({ ownerId: self.ownerId, name: 's', scopes: ['reports:read'], environment: 'test' });
        const rotated = await service.rotate(sibling.apiKey.id, { gracePeriodMs });
        const graceEnd = rotated.previous.expiresAt;
        const res = await http()
          .patch(`/api-keys/${sibling.apiKey.id}`)
          .set(as(self.key))
          .send({ expiresAt: new Date(Date.now() + HOUR).toISOString() });
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('forbidden_expiry');
        expect((await service.get(sibling.apiKey.id))?.expiresAt).toEqual(graceEnd);
      }
    });

    it("issues keys that expire with the caller: its expiry by default, never later, never none", async () => {
      const expiresAt = new Date(Date.now() + HOUR);
      const self = await selfKey({ expiresAt });
      const implicit = await http().post('/api-keys').set(as(self.key)).send({ name: 'a', scopes: ['reports:read'] });
      expect(implicit.status).toBe(201);
      expect(implicit.body.apiKey.expiresAt).toBe(expiresAt.toISOString());
      const before = await count(self.ownerId);
      for (const requested of [null, new Date(expiresAt.getTime() + 1000).toISOString()]) {
        const res = await http().post('/api-keys').set(as(self.key)).send({ name: 'b', scopes: ['reports:read'], expiresAt: requested });
        expect(res.status, String(requested)).toBe(403);
        expect(res.body.code).toBe('forbidden_expiry');
      }
      expect(await count(self.ownerId)).toBe(before);
      const sooner = new Date(expiresAt.getTime() - MINUTE).toISOString();
      const ok = await http().post('/api-keys').set(as(self.key)).send({ name: 'c', scopes: ['reports:read'], expiresAt: sooner });
      expect(ok.status).toBe(201);
      expect(ok.body.apiKey.expiresAt).toBe(sooner);
    });

    it('a rotated-out key in its grace period mints only keys that end with its grace period', async () => {
      const self = await selfKey();
      const rotated = await service.rotate(self.apiKey.id, { gracePeriodMs: MINUTE });
      const graceEnd = rotated.previous.expiresAt!.toISOString();
      const minted = await http().post('/api-keys').set(as(self.key)).send({ name: 'late', scopes: ['reports:read'] });
      expect(minted.status).toBe(201);
      expect(minted.body.apiKey.expiresAt).toBe(graceEnd);
      const later = await http()
        .post('/api-keys')
        .set(as(self.key))
        .send({ name: 'later', scopes: ['reports:read'], expiresAt: new Date(Date.now() + HOUR).toISOString() });
      expect(later.status).toBe(403);
      expect(later.body.code).toBe('forbidden_expiry');
    });

    it('an admin may extend, clear or revive', async () => {
      const self = await selfKey({ expiresAt: new Date(Date.now() + HOUR) });
      const cleared = await http().patch(`/api-keys/${self.apiKey.id}`).set(as(admin)).send({ expiresAt: null });
      expect(cleared.status).toBe(200);
      expect(cleared.body.expiresAt).toBeNull();
      const expired = (await service.rotate(self.apiKey.id, { gracePeriodMs: 0 })).previous;
      const revivedUntil = new Date(Date.now() + 2 * HOUR).toISOString();
      const revived = await http().patch(`/api-keys/${expired.id}`).set(as(admin)).send({ expiresAt: revivedUntil });
      expect(revived.status).toBe(200);
      expect(revived.body.expiresAt).toBe(revivedUntil);
      expect(await status(self.key)).toBe(200);
    });
  });

  describe('managing more capable keys (issue item 5)', () => {
    it('may not revoke or delete a key of its owner holding a scope it lacks (403 scope_escalation); the key keeps working', async () => {
      const self = await selfKey();
      const ownerAdmin = await service.issue({ ownerId: self.ownerId, name: 'owner-admin', scopes: [ADMIN], environment: 'test' });
      const writer = await service.issue({ ownerId: self.ownerId, name: 'writer', scopes: ['reports:write'], environment: 'test' });
      for (const target of [ownerAdmin, writer]) {
        const revoke = await http().post(`/api-keys/${target.apiKey.id}/revoke`).set(as(self.key));
        expect(revoke.status).toBe(403);
        expect(revoke.body.code).toBe('scope_escalation');
        const remove = await http().delete(`/api-keys/${target.apiKey.id}`).set(as(self.key));
        expect(remove.status).toBe(403);
        expect(remove.body.code).toBe('scope_escalation');
        expect(await status(target.key)).toBe(200);
      }
      // Keys within its scopes it may revoke and delete, itself included.
      const reader = await service.issue({ ownerId: self.ownerId, name: 'reader', scopes: ['reports:read'], environment: 'test' });
      expect((await http().post(`/api-keys/${reader.apiKey.id}/revoke`).set(as(self.key))).status).toBe(200);
      expect((await http().delete(`/api-keys/${reader.apiKey.id}`).set(as(self.key))).status).toBe(204);
      expect((await http().post(`/api-keys/${self.apiKey.id}/revoke`).set(as(self.key))).status).toBe(200);
    });

    it('may not change a sibling more capable than itself, even its name (403, naming the rule)', async () => {
      const self = await selfKey({ policy: { quota: { limit: 50 } }, expiresAt: new Date(Date.now() + HOUR) });
      const cases: Array<[Parameters<ApiKeyService['issue']>[0], string]> = [
        [{ ownerId: self.ownerId, name: 'live', scopes: ['reports:read'], environment: 'live', policy: { quota: { limit: 1 } } }, 'forbidden_environment'],
        [{ ownerId: self.ownerId, name: 'open', scopes: ['reports:read'], environment: 'test', expiresAt: new Date(Date.now() + 1000) }, 'forbidden_policy'],
        [{ ownerId: self.ownerId, name: 'forever', scopes: ['reports:read'], environment: 'test', policy: self.apiKey.policy }, 'forbidden_policy'],
      ];
      for (const [input, code] of cases) {
        const sibling = await service.issue(input);
        const res = await http().patch(`/api-keys/${sibling.apiKey.id}`).set(as(self.key)).send({ name: 'renamed' });
        expect(res.status, input.name).toBe(403);
        expect(res.body.code).toBe(code);
        expect((await service.get(sibling.apiKey.id))?.name).toBe(input.name);
      }
    });
  });
});

/** A memory store that runs `between` once, right before the n-th `getById` of `id` answers. */
class InterleavingBackend extends MemoryBackend {
  private plan: { id: string; n: number; between: () => Promise<unknown> } | null = null;
  private seen = 0;

  interleave(id: string, n: number, between: () => Promise<unknown>): void {
    this.plan = { id, n, between };
    this.seen = 0;
  }

  override async getById(id: string) {
    const plan = this.plan;
    if (plan !== null && id === plan.id && ++this.seen === plan.n) {
      this.plan = null;
      await plan.between();
    }
    return super.getById(id);
  }

  private beforeWrite: { id: string; between: () => Promise<unknown> } | null = null;

  /** Runs `between` once, just before the next store write of `id` (after the route's read). */
  interleaveBeforeUpdate(id: string, between: () => Promise<unknown>): void {
    this.beforeWrite = { id, between };
  }

  override async update(...args: Parameters<MemoryBackend['update']>) {
    const plan = this.beforeWrite;
    if (plan !== null && args[0] === plan.id) {
      this.beforeWrite = null;
      await plan.between();
    }
    return super.update(...args);
  }
}

describe.each(ADAPTERS)('a rotation racing an admin change over %s', (adapter) => {
  let app: INestApplication;
  let service: ApiKeyService;
  let backend: InterleavingBackend;

  beforeAll(async () => {
    backend = new InterleavingBackend();
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'race_', backend, routes: true })]);
    service = app.get(ApiKeyService);
  });
  afterAll(() => app?.close());

  it('never hands out a replacement stronger than the caller, though the target was fine when the route read it', async () => {
    const self = await service.issue({ ownerId: 'o', name: 'self', scopes: [SELF, 'reports:read'] });
    const target = await service.issue({ ownerId: 'o', name: 't', scopes: ['reports:read'] });
    const before = await service.countByOwner('o');
    // The route reads the target (1st read); an admin widens its scopes; rotate reads it (2nd).
    backend.interleave(target.apiKey.id, 2, () => service.update(target.apiKey.id, { scopes: ['reports:read', 'billing:write'] }));
    const res = await request(app.getHttpServer()).post(`/api-keys/${target.apiKey.id}/rotate`).set('X-API-Key', self.key).send({});
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('scope_escalation');
    expect(res.body.key).toBeUndefined();
    // The replacement was minted, then deleted unseen.
    expect(await service.countByOwner('o')).toBe(before);
  });

  it("never undoes an admin's shorter expiry with a self-service expiry change checked against the older one: 412", async () => {
    const self = await service.issue({ ownerId: 'p', name: 'self', scopes: [SELF], expiresAt: new Date(Date.now() + 2 * HOUR) });
    const adminExpiry = new Date(Date.now() + HOUR / 2);
    // Between the route's read (expiry in 2 h: 1 h is "bringing it forward") and its
    // write, an admin shortens the key to 30 min.
    backend.interleaveBeforeUpdate(self.apiKey.id, () => service.update(self.apiKey.id, { expiresAt: adminExpiry }));
    const res = await request(app.getHttpServer())
      .patch(`/api-keys/${self.apiKey.id}`)
      .set('X-API-Key', self.key)
      .send({ expiresAt: new Date(Date.now() + HOUR).toISOString() });
    expect(res.status).toBe(412);
    expect(res.body.code).toBe('version_conflict');
    expect((await service.get(self.apiKey.id))!.expiresAt).toEqual(adminExpiry);
  });

  it('a self-service write of other fields is not pinned: the admin change and the write both stand', async () => {
    const self = await service.issue({ ownerId: 'q', name: 'self', scopes: [SELF], expiresAt: new Date(Date.now() + 2 * HOUR) });
    const adminExpiry = new Date(Date.now() + HOUR / 2);
    backend.interleaveBeforeUpdate(self.apiKey.id, () => service.update(self.apiKey.id, { expiresAt: adminExpiry }));
    const res = await request(app.getHttpServer()).patch(`/api-keys/${self.apiKey.id}`).set('X-API-Key', self.key).send({ name: 'renamed' });
    expect(res.status).toBe(200);
    const stored = (await service.get(self.apiKey.id))!;
    expect(stored.expiresAt).toEqual(adminExpiry);
    expect(stored.name).toBe('renamed');
  });
});
