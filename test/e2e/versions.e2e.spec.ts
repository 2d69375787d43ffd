import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, type ApiKeyEvent } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { STORE_SETUPS } from '../fixtures/store.setups.js';

const ADMIN = 'api-keys:admin';
const SELF = 'api-keys:self';

describe.each(STORE_SETUPS)('on $name', (setup) => {
  describe.each(ADAPTERS)('versions, ETag and If-Match, cascading revoke over %s', (adapter) => {
    let app: INestApplication;
    let close: () => Promise<void>;
    let service: ApiKeyService;
    let adminKey: string;
    let adminId: string;
    const events: ApiKeyEvent[] = [];

    const http = () => request(app.getHttpServer());
    const as = (key: string) => ({ 'X-API-Key': key });

    beforeAll(async () => {
      const store = await setup.open(`versions-${adapter}`);
      close = store.close;
      app = await bootApp(
        adapter,
        [ApiAuthModule.forRoot({ prefix: 'ver_', backend: store.backend, routes: { path: 'api-keys' }, onEvent: (e) => events.push(e) })],
        { controllers: [] },
      );
      service = app.get(ApiKeyService);
      const admin = await service.issue({ ownerId: 'ops', name: 'admin', scopes: [ADMIN] });
      adminKey = admin.key;
      adminId = admin.apiKey.id;
    });
    afterAll(async () => {
      await app?.close();
      await close?.();
    });
    beforeEach(() => {
      events.length = 0;
    });

    const newKey = async (scopes = ['reports:read']) => (await service.issue({ ownerId: 'alice', name: 'k', scopes })).apiKey.id;

    it('sends version in every key answer and ETag on single-key answers', async () => {
      const issued = await http().post('/api-keys').set(as(adminKey)).send({ ownerId: 'alice', name: 'n', scopes: ['r'] });
      expect(issued.status).toBe(201);
      expect(issued.body.apiKey).toMatchObject({ version: 1, issuedById: adminId });
      expect(issued.headers.etag).toBe('"1"');
      const id = issued.body.apiKey.id;

      const got = await http().get(`/api-keys/${id}`).set(as(adminKey));
      expect(got.headers.etag).toBe('"1"');
      expect(got.body.version).toBe(1);

      const patched = await http().patch(`/api-keys/${id}`).set(as(adminKey)).send({ name: 'renamed' });
      expect(patched.status).toBe(200);
      expect(patched.headers.etag).toBe('"2"');
      expect(patched.body).toMatchObject({ version: 2, name: 'renamed' });

      const list = await http().get('/api-keys?ownerId=alice').set(as(adminKey));
      // No version tag for a list (Express may add its own weak body tag, which never matches If-Match).
      expect(list.headers.etag ?? '').not.toMatch(/^"\d+"$/);
      expect(list.body.items.find((item: { id: string }) => item.id === id).version).toBe(2);

      const rotated = await http().post(`/api-keys/${id}/rotate`).set(as(adminKey)).send({ gracePeriodMs: 60_000 });
      expect(rotated.status).toBe(201);
      expect(rotated.headers.etag).toBe('"1"');
      expect(rotated.body.apiKey).toMatchObject({ version: 1, issuedById: adminId });
      expect(rotated.body.previous.version).toBe(3);
    });

    it('writes a PATCH under a matching If-Match, and answers 412 version_conflict (writing nothing) otherwise', async () => {
      const id = await newKey();
      const ok = await http().patch(`/api-keys/${id}`).set(as(adminKey)).set('If-Match', '"1"').send({ name: 'first' });
      expect(ok.status).toBe(200);
      expect(ok.headers.etag).toBe('"2"');

      const stale = await http().patch(`/api-keys/${id}`).set(as(adminKey)).set('If-Match', '"1"').send({ name: 'stale' });
      expect(stale.status).toBe(412);
      expect(stale.body).toEqual({
        statusCode: 412,
        error: 'Precondition Failed',
        code: 'version_conflict',
        message: expect.stringContaining('version 2'),
      });
      expect(await service.get(id)).toMatchObject({ name: 'first', version: 2 });

      // A list naming the current version, and "*", match; a weak tag never does.
      expect((await http().patch(`/api-keys/${id}`).set(as(adminKey)).set('If-Match', '"7", "2"').send({ name: 'listed' })).status).toBe(200);
      expect((await http().patch(`/api-keys/${id}`).set(as(adminKey)).set('If-Match', '*').send({ name: 'any' })).status).toBe(200);
      expect((await http().patch(`/api-keys/${id}`).set(as(adminKey)).set('If-Match', 'W/"4"').send({ name: 'weak' })).status).toBe(412);
      const malformed = await http().patch(`/api-keys/${id}`).set(as(adminKey)).set('If-Match', 'four').send({ name: 'x' });
      expect(malformed.status).toBe(400);
      expect(malformed.body).toMatchObject({ code: 'validation_failed', field: 'If-Match' });
      expect(await service.get(id)).toMatchObject({ name: 'any', version: 4 });
    });

    it('of two PATCHes sent with the same If-Match, exactly one is written', async () => {
      const id = await newKey();
      const answers = await Promise.all(
        ['a', 'b', 'c', 'd'].map((name) => http().patch(`/api-keys/${id}`).set(as(adminKey)).set('If-Match', '"1"').send({ name })),
      );
      expect(answers.map((a) => a.status).sort()).toEqual([200, 412, 412, 412]);
      expect((await service.get(id))?.version).toBe(2);
    });

    it('revokes under If-Match only at that version', async () => {
      const id = await newKey();
      await service.update(id, { name: 'moved' });
      const stale = await http().post(`/api-keys/${id}/revoke`).set(as(adminKey)).set('If-Match', '"1"');
      expect(stale.status).toBe(412);
      expect((await service.get(id))?.revokedAt).toBeNull();
      const ok = await http().post(`/api-keys/${id}/revoke`).set(as(adminKey)).set('If-Match', '"2"');
      expect(ok.status).toBe(200);
      expect(ok.headers.etag).toBe('"3"');
      expect(ok.body.revokedAt).not.toBeNull();
    });

    it('revokes every key a key issued, transitively, by default; events name the cascade', async () => {
      const root = await service.issue({ ownerId: 'carol', name: 'root', scopes: [SELF, 'r'] });
      const child = await http().post('/api-keys').set(as(root.key)).send({ name: 'child', scopes: [SELF, 'r'] });
      expect(child.body.apiKey.issuedById).toBe(root.apiKey.id);
      const grandchild = await http().post('/api-keys').set(as(child.body.key)).send({ name: 'grandchild', scopes: ['r'] });
      expect(grandchild.body.apiKey.issuedById).toBe(child.body.apiKey.id);
      // Rotating through the routes records the caller as the issuer of the replacement.
      const rotated = await http().post(`/api-keys/${grandchild.body.apiKey.id}/rotate`).set(as(child.body.key)).send({ gracePeriodMs: 60_000 });
      expect(rotated.body.apiKey.issuedById).toBe(child.body.apiKey.id);
      const sibling = await service.issue({ ownerId: 'carol', name: 'sibling', scopes: ['r'] });
      events.length = 0;

      const res = await http().post(`/api-keys/${root.apiKey.id}/revoke`).set(as(adminKey));
      expect(res.status).toBe(200);
      for (const id of [root.apiKey.id, child.body.apiKey.id, grandchild.body.apiKey.id, rotated.body.apiKey.id]) {
        expect((await service.get(id))?.revokedAt, id).not.toBeNull();
      }
      expect((await service.get(sibling.apiKey.id))?.revokedAt).toBeNull();
      for (const key of [child.body.key, grandchild.body.key, rotated.body.key]) {
        expect((await http().get('/api-keys').set(as(key))).body.code).toBe('revoked_api_key');
      }
      const revoked = events.filter((e) => e.type === 'api-key.revoked');
      expect(revoked.map((e) => [e.apiKey.id, e.cascadeOf]).sort()).toEqual(
        [
          [root.apiKey.id, undefined],
          [child.body.apiKey.id, root.apiKey.id],
          [grandchild.body.apiKey.id, root.apiKey.id],
          [rotated.body.apiKey.id, root.apiKey.id],
        ].sort(),
      );
    });

    it('revokes the key alone with ?cascade=false, and refuses any other value', async () => {
      const root = await service.issue({ ownerId: 'dave', name: 'root', scopes: [SELF, 'r'] });
      const child = await http().post('/api-keys').set(as(root.key)).send({ name: 'child', scopes: ['r'] });
      const bad = await http().post(`/api-keys/${root.apiKey.id}/revoke?cascade=yes`).set(as(adminKey));
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({ code: 'validation_failed', field: 'cascade' });
      expect((await service.get(root.apiKey.id))?.revokedAt).toBeNull();
      const res = await http().post(`/api-keys/${root.apiKey.id}/revoke?cascade=false`).set(as(adminKey));
      expect(res.status).toBe(200);
      expect((await service.get(child.body.apiKey.id))?.revokedAt).toBeNull();
      expect(events.filter((e) => e.type === 'api-key.revoked')).toHaveLength(1);
      // Revoking again with the cascade reaches the keys it left.
      await http().post(`/api-keys/${root.apiKey.id}/revoke`).set(as(adminKey));
      expect((await service.get(child.body.apiKey.id))?.revokedAt).not.toBeNull();
      expect(events.filter((e) => e.type === 'api-key.revoked')).toHaveLength(2);
    });
  });
});
