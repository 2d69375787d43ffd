import { Controller, Get, UseGuards, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY_BACKEND, ApiAuthModule, ApiKeyGuard, ApiKeyService, RequireScopes, type ApiKeyBackend } from 'nestjs-api-auth';
import { ADAPTERS, bootApp, GuardedController, type Adapter } from '../fixtures/app.js';
import { STORE_SETUPS } from '../fixtures/store.setups.js';

/** One route per scope a `reports:*` key holds or lacks. */
@Controller('reports')
@UseGuards(ApiKeyGuard)
class ReportsController {
  @Get('read')
  @RequireScopes('reports:read')
  read() {
    return { ok: true };
  }

  @Get('billing')
  @RequireScopes('billing:read')
  billing() {
    return { ok: true };
  }
}

/**
 * Patterns through the guard, the management routes and each store: one app per store
 * and adapter, reused by every case. GuardedController (test/fixtures/app.ts): /t/write
 * needs things:read and things:write; /t/scope-of answers the verified key's scopes.
 */
describe.each(STORE_SETUPS)('scope patterns on $name', (setup) => {
  describe.each(ADAPTERS)('over %s', (adapter: Adapter) => {
    let app: INestApplication;
    let service: ApiKeyService;
    let close: () => Promise<void>;
    let adminKey: string;
    const http = () => request(app.getHttpServer());
    const as = (key: string) => ({ 'X-API-Key': key });

    beforeAll(async () => {
      const store = await setup.open(`scope-patterns-${adapter}`);
      close = store.close;
      app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'sp_', backend: store.backend, routes: { path: 'api-keys' }, trackUsage: false })], {
        controllers: [GuardedController, ReportsController],
      });
      service = app.get(ApiKeyService);
      adminKey = (await service.issue({ ownerId: 'ops', name: 'admin', scopes: ['api-keys:admin'] })).key;
    });
    afterAll(async () => {
      await app?.close();
      await close?.();
    });

    it('a key holding reports:* passes @RequireScopes(\'reports:read\') and fails @RequireScopes(\'billing:read\')', async () => {
      const wide = await service.issue({ ownerId: 'o', name: 'reports', scopes: ['reports:*'] });
      await http().get('/reports/read').set(as(wide.key)).expect(200);
      const refused = await http().get('/reports/billing').set(as(wide.key)).expect(403);
      // The 403 names what the route needs, never what the key holds.
      expect(refused.body).toMatchObject({ code: 'insufficient_scope', requiredScopes: ['billing:read'] });
      expect(JSON.stringify(refused.body)).not.toContain('reports');
    });

    it('a key holding things:* passes a route that requires things:read and things:write; things:read alone does not', async () => {
      const wide = await service.issue({ ownerId: 'o', name: 'wide', scopes: ['things:*'] });
      const narrow = await service.issue({ ownerId: 'o', name: 'narrow', scopes: ['things:read'] });
      await http().get('/t/write').set(as(wide.key)).expect(200);
      const refused = await http().get('/t/write').set(as(narrow.key)).expect(403);
      expect(refused.body).toMatchObject({ code: 'insufficient_scope', requiredScopes: ['things:read', 'things:write'] });
      expect(JSON.stringify(refused.body)).not.toContain('*');
    });

    it('refuses other wildcard forms at issue and update with a 400 naming "scopes"', async () => {
      for (const scope of ['*', 'things*', '*:read', 'things:*:read']) {
        const res = await http().post('/api-keys').set(as(adminKey)).send({ ownerId: 'o', name: 'bad', scopes: [scope] });
        expect(res.status, scope).toBe(400);
        expect(res.body).toMatchObject({ code: 'validation_failed', field: 'scopes' });
      }
      const issued = await http().post('/api-keys').set(as(adminKey)).send({ ownerId: 'o', name: 'ok', scopes: ['things:*'] }).expect(201);
      const patched = await http().patch(`/api-keys/${issued.body.apiKey.id}`).set(as(adminKey)).send({ scopes: ['things*'] });
      expect(patched.status).toBe(400);
      expect((await service.get(issued.body.apiKey.id))?.scopes).toEqual(['things:*']);
    });

    it('self-service: reports:* may mint reports:read and reports:eu:*; reports:read may not mint reports:* (403 scope_escalation)', async () => {
      const wide = await service.issue({ ownerId: 'acme', name: 'wide', scopes: ['api-keys:self', 'reports:*'] });
      const narrow = await service.issue({ ownerId: 'acme', name: 'narrow', scopes: ['api-keys:self', 'reports:read'] });
      const child = await http().post('/api-keys').set(as(wide.key)).send({ name: 'child', scopes: ['reports:read'] }).expect(201);
      expect(child.body.apiKey).toMatchObject({ ownerId: 'acme', scopes: ['reports:read'] });
      await http().get('/reports/read').set(as(child.body.key)).expect(200);
      await http().post('/api-keys').set(as(wide.key)).send({ name: 'child', scopes: ['reports:eu:*'] }).expect(201);
      const before = await service.countByOwner('acme');
      const escalation = await http().post('/api-keys').set(as(narrow.key)).send({ name: 'child', scopes: ['reports:*'] }).expect(403);
      expect(escalation.body.code).toBe('scope_escalation');
      expect(await service.countByOwner('acme')).toBe(before);
      // Nor may it manage a key holding the pattern.
      const revoke = await http().post(`/api-keys/${wide.apiKey.id}/revoke`).set(as(narrow.key)).send({});
      expect(revoke.status).toBe(403);
      expect((await service.get(wide.apiKey.id))?.revokedAt).toBeNull();
    });

    it('reads persisted patterns back identically: over HTTP, from the service, from the store and on the verified key', async () => {
      const scopes = ['reports:*', 'reports:eu:*', 'billing:read', 'api-keys:*'];
      const issued = await http().post('/api-keys').set(as(adminKey)).send({ ownerId: 'p', name: 'patterns', scopes }).expect(201);
      const id: string = issued.body.apiKey.id;
      expect(issued.body.apiKey.scopes).toEqual(scopes);
      expect((await http().get(`/api-keys/${id}`).set(as(adminKey)).expect(200)).body.scopes).toEqual(scopes);
      expect((await service.get(id))?.scopes).toEqual(scopes);
      expect((await app.get<ApiKeyBackend>(API_KEY_BACKEND).getById(id))?.scopes).toEqual(scopes);
      expect((await http().get('/t/scope-of').set(as(issued.body.key)).expect(200)).body.scopes).toEqual(scopes);
      // An update writes them back unchanged, too.
      const patched = await http().patch(`/api-keys/${id}`).set(as(adminKey)).send({ scopes: ['reports:*', 'billing:read'] }).expect(200);
      expect(patched.body.scopes).toEqual(['reports:*', 'billing:read']);
      expect((await app.get<ApiKeyBackend>(API_KEY_BACKEND).getById(id))?.scopes).toEqual(['reports:*', 'billing:read']);
    });

    it('a pattern over the management scopes grants them, as the guard reads it', async () => {
      const ops = await service.issue({ ownerId: 'ops', name: 'ops', scopes: ['api-keys:*'] });
      const listed = await http().get('/api-keys').query({ ownerId: 'o' }).set(as(ops.key)).expect(200);
      expect(listed.body.total).toBeGreaterThan(0);
    });
  });
});
