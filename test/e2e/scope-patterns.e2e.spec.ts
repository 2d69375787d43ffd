import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, bootApp, type Adapter } from '../fixtures/app.js';

/** GuardedController (test/fixtures/app.ts): /t/write needs things:read and things:write; /t/any needs a or b. */
describe.each(ADAPTERS)('scope patterns over %s', (adapter: Adapter) => {
  let app: INestApplication;
  let service: ApiKeyService;
  let adminKey: string;
  const http = () => request(app.getHttpServer());
  const as = (key: string) => ({ 'X-API-Key': key });

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'sp_', routes: { path: 'api-keys' } })]);
    service = app.get(ApiKeyService);
    adminKey = (await service.issue({ ownerId: 'ops', name: 'admin', scopes: ['api-keys:admin'] })).key;
  });
  afterAll(() => app?.close());

  it('a key holding things:* passes a route that requires things:read and things:write; things:read alone does not', async () => {
    const wide = await service.issue({ ownerId: 'o', name: 'wide', scopes: ['things:*'] });
    const narrow = await service.issue({ ownerId: 'o', name: 'narrow', scopes: ['things:read'] });
    await http().get('/t/write').set(as(wide.key)).expect(200);
    const refused = await http().get('/t/write').set(as(narrow.key)).expect(403);
    // The 403 names what the route needs, never what the key holds.
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
  });

  it('self-service: reports:* may mint reports:read and reports:eu:*; reports:read may not mint reports:*', async () => {
    const wide = await service.issue({ ownerId: 'acme', name: 'wide', scopes: ['api-keys:self', 'reports:*'] });
    const narrow = await service.issue({ ownerId: 'acme', name: 'narrow', scopes: ['api-keys:self', 'reports:read'] });
    await http().post('/api-keys').set(as(wide.key)).send({ name: 'child', scopes: ['reports:read'] }).expect(201);
    await http().post('/api-keys').set(as(wide.key)).send({ name: 'child', scopes: ['reports:eu:*'] }).expect(201);
    const escalation = await http().post('/api-keys').set(as(narrow.key)).send({ name: 'child', scopes: ['reports:*'] }).expect(403);
    expect(escalation.body.code).toBe('scope_escalation');
    // Nor may it manage a key holding the pattern.
    const revoke = await http().post(`/api-keys/${wide.apiKey.id}/revoke`).set(as(narrow.key)).send({});
    expect(revoke.status).toBe(403);
  });

  it('a pattern over the management scopes grants them, as the guard reads it', async () => {
    const ops = await service.issue({ ownerId: 'ops', name: 'ops', scopes: ['api-keys:*'] });
    const listed = await http().get('/api-keys').query({ ownerId: 'o' }).set(as(ops.key)).expect(200);
    expect(listed.body.total).toBeGreaterThan(0);
  });
});
