import type { INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyGuard, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, bootApp, type Adapter } from '../fixtures/app.js';
import { GloballyGuardedController, PublicController } from '../fixtures/scoped.controllers.js';

const registrations = [
  ['useClass', { provide: APP_GUARD, useClass: ApiKeyGuard }],
  ['useExisting', { provide: APP_GUARD, useExisting: ApiKeyGuard }],
] as const;

const cases = ADAPTERS.flatMap((adapter) => registrations.map(([how, provider]) => [adapter, how, provider] as const));

describe.each(cases)('a global ApiKeyGuard over %s (APP_GUARD %s)', (adapter: Adapter, _how, provider) => {
  let app: INestApplication;
  let http: ReturnType<typeof request>;
  let writer: string;
  let reader: string;

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'test_' })], {
      controllers: [GloballyGuardedController, PublicController],
      providers: [provider],
    });
    http = request(app.getHttpServer());
    const service = app.get(ApiKeyService);
    writer = (await service.issue({ ownerId: 'w', name: 'w', scopes: ['things:write'] })).key;
    reader = (await service.issue({ ownerId: 'r', name: 'r', scopes: ['things:read'] })).key;
  });
  afterAll(() => app.close());

  it('protects a controller that never mentions the guard', async () => {
    expect((await http.get('/global/private').expect(401)).body.code).toBe('missing_api_key');
    expect((await http.get('/global/private').set('X-API-Key', reader).expect(200)).body).toEqual({ ownerId: 'r' });
  });

  it('lets @Public() routes through without a key, and even with a bad one', async () => {
    expect((await http.get('/global/public').expect(200)).body).toEqual({ open: true });
    await http.get('/global/public').set('X-API-Key', 'garbage').expect(200);
  });

  it('lets every route of a @Public() controller through', async () => {
    expect((await http.get('/open').expect(200)).body).toEqual({ open: true });
  });

  it('enforces scopes on globally guarded routes', async () => {
    await http.get('/global/scoped').set('X-API-Key', writer).expect(200);
    const res = await http.get('/global/scoped').set('X-API-Key', reader).expect(403);
    expect(res.body).toMatchObject({ code: 'insufficient_scope', requiredScopes: ['things:write'] });
  });

  it('answers 404 (not 401) for an unknown route: routing happens before guards', async () => {
    await http.get('/nowhere').expect(404);
  });
});
