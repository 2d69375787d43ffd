import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  API_KEY_BACKEND,
  ApiAuthModule,
  ApiKeyService,
  MemoryBackend,
  type ApiKeyBackend,
  type ApiKeyEvent,
  type ApiKeyView,
} from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { requiredMethodsOf } from '../fixtures/required-methods.js';
import { STORE_SETUPS } from '../fixtures/store.setups.js';

const ADMIN = 'api-keys:admin';
const SELF = 'api-keys:self';
const READ = 'api-keys:read';

/** Disable/enable, the listing across owners and the read-only operator, over HTTP on every store. */
describe.each(STORE_SETUPS)('key status and listing on $name', (setup) => {
  describe.each(ADAPTERS)('over %s', (adapter) => {
    let app: INestApplication;
    let service: ApiKeyService;
    let close: () => Promise<void>;
    let admin: string;
    let reader: string;
    const events: ApiKeyEvent[] = [];
    const http = () => request(app.getHttpServer());

    beforeAll(async () => {
      const store = await setup.open(`key-status-${adapter}`);
      close = store.close;
      app = await bootApp(adapter, [
        ApiAuthModule.forRoot({
          prefix: 'ks_',
          environment: 'live',
          acceptEnvironments: ['live', 'test'],
          backend: store.backend,
          routes: true,
          trackUsage: false,
          onEvent: (event) => void events.push(event),
        }),
      ]);
      service = app.get(ApiKeyService);
      admin = (await service.issue({ ownerId: 'ops', name: 'admin', scopes: [ADMIN] })).key;
      reader = (await service.issue({ ownerId: 'auditors', name: 'reader', scopes: [READ] })).key;
    });
    afterAll(async () => {
      await app?.close();
      await close?.();
    });

    it('disables a key (401 disabled_api_key on every route) and enables it again, with ETag, If-Match and events', async () => {
      const { key, apiKey } = await service.issue({ ownerId: 'tenant-a', name: 'k', scopes: ['reports:read'] });
      expect((await http().get('/t/me').set('X-API-Key', key)).status).toBe(200);
      events.length = 0;
      const stale = await http().post(`/api-keys/${apiKey.id}/disable`).set('X-API-Key', admin).set('If-Match', '"7"');
      expect(stale.status).toBe(412);
      expect(stale.body.code).toBe('version_conflict');

      const disabled = await http().post(`/api-keys/${apiKey.id}/disable`).set('X-API-Key', admin).set('If-Match', '"1"');
      expect(disabled.status, disabled.text).toBe(200);
      expect(disabled.headers.etag).toBe('"2"');
      expect(disabled.body).toMatchObject({ id: apiKey.id, version: 2, revokedAt: null, disabledAt: expect.any(String) });
      const refused = await http().get('/t/me').set('Authorization', `Bearer ${key}`);
      expect(refused.status).toBe(401);
      expect(refused.body).toMatchObject({ code: 'disabled_api_key', message: 'The API key is disabled.' });
      expect(refused.headers['www-authenticate']).toBe('ApiKey realm="api", error="disabled_api_key"');
      // Twice is once.
      const again = await http().post(`/api-keys/${apiKey.id}/disable`).set('X-API-Key', admin);
      expect(again.body.version).toBe(2);
      expect((await http().get(`/api-keys/${apiKey.id}`).set('X-API-Key', admin)).body.disabledAt).toBe(disabled.body.disabledAt);

      const enabled = await http().post(`/api-keys/${apiKey.id}/enable`).set('X-API-Key', admin).set('If-Match', '"2"');
      expect(enabled.status, enabled.text).toBe(200);
      expect(enabled.body).toMatchObject({ version: 3, disabledAt: null });
      expect((await http().get('/t/me').set('X-API-Key', key)).status).toBe(200);
      expect(events.filter((e) => e.type !== 'api-key.authentication-denied').map((e) => e.type)).toEqual([
        'api-key.disabled',
        'api-key.enabled',
      ]);
      const body = await http().post(`/api-keys/${apiKey.id}/enable`).set('X-API-Key', admin).send({ extra: 1 });
      expect(body.status).toBe(400);
    });

    it('revokes a disabled key; a revoked key can be neither enabled nor disabled (409 key_revoked)', async () => {
      const { key, apiKey } = await service.issue({ ownerId: 'tenant-a', name: 'k' });
      await http().post(`/api-keys/${apiKey.id}/disable`).set('X-API-Key', admin).expect(200);
      const revoked = await http().post(`/api-keys/${apiKey.id}/revoke`).set('X-API-Key', admin);
      expect(revoked.status).toBe(200);
      expect(revoked.body.revokedAt).not.toBeNull();
      for (const verb of ['enable', 'disable']) {
        const refused = await http().post(`/api-keys/${apiKey.id}/${verb}`).set('X-API-Key', admin);
        expect(refused.status).toBe(409);
        expect(refused.body.code).toBe('key_revoked');
      }
      // Revoked is checked before disabled.
      expect((await http().get('/t/me').set('X-API-Key', key)).body.code).toBe('revoked_api_key');
    });

    it('lets a self-service key disable and enable exactly the keys it could revoke', async () => {
      const self = await service.issue({ ownerId: 'tenant-b', name: 'self', scopes: [SELF, 'reports:read'] });
      const lesser = await service.issue({ ownerId: 'tenant-b', name: 'lesser', scopes: ['reports:read'] });
      const greater = await service.issue({ ownerId: 'tenant-b', name: 'greater', scopes: ['reports:read', 'reports:write'] });
      const foreign = await service.issue({ ownerId: 'tenant-c', name: 'foreign', scopes: ['reports:read'] });
      await http().post(`/api-keys/${lesser.apiKey.id}/disable`).set('X-API-Key', self.key).expect(200);
      await http().post(`/api-keys/${lesser.apiKey.id}/enable`).set('X-API-Key', self.key).expect(200);
      const escalation = await http().post(`/api-keys/${greater.apiKey.id}/disable`).set('X-API-Key', self.key);
      expect(escalation.status).toBe(403);
      expect(escalation.body.code).toBe('scope_escalation');
      expect((await http().post(`/api-keys/${foreign.apiKey.id}/disable`).set('X-API-Key', self.key)).status).toBe(404);
      // A disabled key cannot switch itself back on: the guard refuses it first.
      await http().post(`/api-keys/${self.apiKey.id}/disable`).set('X-API-Key', self.key).expect(200);
      const own = await http().post(`/api-keys/${self.apiKey.id}/enable`).set('X-API-Key', self.key);
      expect(own.status).toBe(401);
      expect(own.body.code).toBe('disabled_api_key');
    });

    it('lists every owner\'s keys newest first for admin and read-only keys, paged, filtered by owner, environment and status', async () => {
      const tenants = [`all-${adapter}-1`, `all-${adapter}-2`];
      const issued: ApiKeyView[] = [];
      for (let i = 0; i < 5; i++) {
        issued.push((await service.issue({ ownerId: tenants[i % 2]!, name: `k${i}`, environment: i === 4 ? 'test' : 'live' })).apiKey);
      }
      const mine = issued.map((k) => k.id);
      /** `ids` in the listing's order: createdAt, then id, both descending (keys minted in one millisecond tie). */
      const newestFirst = (ids: string[]) =>
        issued
          .filter((k) => ids.includes(k.id))
          .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
          .map((k) => k.id);
      await service.disable(mine[1]!);
      await service.revoke(mine[2]!);
      // Expired in the past, written to the store directly: the service only accepts future expiries.
      await app.get<ApiKeyBackend>(API_KEY_BACKEND).update(mine[3]!, { expiresAt: new Date(Date.now() - 60_000), updatedAt: new Date() });

      for (const caller of [admin, reader]) {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const res: request.Response = await http()
            .get('/api-keys')
            .query({ all: 'true', limit: '2', ...(cursor ? { cursor } : {}) })
            .set('X-API-Key', caller);
          expect(res.status, res.text).toBe(200);
          expect(Object.keys(res.body).sort()).toEqual(['items', 'nextCursor']);
          expect(res.body.items.length).toBeLessThanOrEqual(2);
          seen.push(...res.body.items.map((k: { id: string }) => k.id));
          cursor = res.body.nextCursor;
          pages++;
        } while (cursor !== null);
        expect(pages).toBeGreaterThan(2);
        expect(seen.filter((id) => mine.includes(id))).toEqual(newestFirst(mine));
        expect(new Set(seen).size).toBe(seen.length);
      }
      const listed = async (query: Record<string, string>) => {
        const res = await http().get('/api-keys').query({ all: 'true', ...query }).set('X-API-Key', admin);
        expect(res.status, res.text).toBe(200);
        return res.body.items.map((k: { id: string }) => k.id).filter((id: string) => mine.includes(id));
      };
      expect(await listed({ ownerId: tenants[0]! })).toEqual(newestFirst([mine[4]!, mine[2]!, mine[0]!]));
      expect(await listed({ environment: 'test' })).toEqual([mine[4]]);
      expect(await listed({ status: 'disabled' })).toEqual([mine[1]]);
      expect(await listed({ status: 'revoked' })).toEqual([mine[2]]);
      expect(await listed({ status: 'expired' })).toEqual([mine[3]]);
      expect(await listed({ status: 'active', ownerId: tenants[0]! })).toEqual(newestFirst([mine[4]!, mine[0]!]));

      const bad = await http().get('/api-keys').query({ all: 'true', status: 'gone' }).set('X-API-Key', admin);
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({ code: 'validation_failed', field: 'status' });
      const filterWithoutAll = await http().get('/api-keys').query({ status: 'active' }).set('X-API-Key', admin);
      expect(filterWithoutAll.status).toBe(400);
      const self = await service.issue({ ownerId: tenants[0]!, name: 'self', scopes: [SELF] });
      const forbidden = await http().get('/api-keys').query({ all: 'true' }).set('X-API-Key', self.key);
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.code).toBe('forbidden_owner');
    });

    it('gives a read-only key list and get on every owner, and 403 insufficient_scope on every write', async () => {
      const target = await service.issue({ ownerId: 'tenant-d', name: 'target', scopes: ['reports:read'] });
      const list = await http().get('/api-keys').query({ ownerId: 'tenant-d' }).set('X-API-Key', reader);
      expect(list.status).toBe(200);
      expect(list.body.items.map((k: { id: string }) => k.id)).toEqual([target.apiKey.id]);
      const got = await http().get(`/api-keys/${target.apiKey.id}`).set('X-API-Key', reader);
      expect(got.status).toBe(200);
      expect(got.headers.etag).toBe('"1"');
      const writes = [
        http().post('/api-keys').send({ name: 'x', scopes: ['reports:read'] }),
        http().patch(`/api-keys/${target.apiKey.id}`).send({ name: 'renamed' }),
        http().post(`/api-keys/${target.apiKey.id}/revoke`),
        http().post(`/api-keys/${target.apiKey.id}/rotate`),
        http().post(`/api-keys/${target.apiKey.id}/disable`),
        http().post(`/api-keys/${target.apiKey.id}/enable`),
        http().delete(`/api-keys/${target.apiKey.id}`),
      ];
      for (const write of writes) {
        const res = await write.set('X-API-Key', reader);
        expect(res.status, res.text).toBe(403);
        expect(res.body).toMatchObject({ code: 'insufficient_scope', requiredScopes: [ADMIN, SELF], scopeMatch: 'any' });
      }
      expect(await service.get(target.apiKey.id)).toMatchObject({ name: 'target', version: 1, revokedAt: null, disabledAt: null });
      // A key with none of the three scopes is refused by the guard, naming all three.
      const none = await service.issue({ ownerId: 'tenant-d', name: 'none', scopes: ['reports:read'] });
      const refused = await http().get('/api-keys').set('X-API-Key', none.key);
      expect(refused.status).toBe(403);
      expect(refused.body.requiredScopes).toEqual([ADMIN, SELF, READ]);
    });
  });
});

describe.each(ADAPTERS)('the listing across owners on a custom backend without listAll, over %s', (adapter) => {
  let app: INestApplication;
  let admin: string;

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'ks_', backend: requiredMethodsOf(new MemoryBackend()), routes: true })]);
    admin = (await app.get(ApiKeyService).issue({ ownerId: 'ops', name: 'admin', scopes: [ADMIN] })).key;
  });
  afterAll(() => app?.close());

  it('answers 501 list_all_unsupported, and the owner listing still works', async () => {
    const res = await request(app.getHttpServer()).get('/api-keys').query({ all: 'true' }).set('X-API-Key', admin);
    expect(res.status).toBe(501);
    expect(res.body).toMatchObject({ statusCode: 501, error: 'Not Implemented', code: 'list_all_unsupported' });
    const own = await request(app.getHttpServer()).get('/api-keys').set('X-API-Key', admin);
    expect(own.status).toBe(200);
    expect(own.body.total).toBe(1);
  });
});
