import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';

describe.each(ADAPTERS)('ApiKeyGuard over %s', (adapter) => {
  let app: INestApplication;
  let service: ApiKeyService;
  let key: string;

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'test_' })]);
    service = app.get(ApiKeyService);
    ({ key } = await service.issue({ ownerId: 'user-1', name: 'k', scopes: ['things:read'] }));
  });
  afterAll(() => app.close());

  it('200 with a valid key', async () => {
    const res = await request(app.getHttpServer()).get('/t/me').set('X-API-Key', key).expect(200);
    expect(res.body.ownerId).toBe('user-1');
    expect(res.body.apiKey.keyHash).toBeUndefined();
  });

  it('401 missing_api_key without a key', async () => {
    const res = await request(app.getHttpServer()).get('/t/me').expect(401);
    expect(res.body.code).toBe('missing_api_key');
    expect(res.headers['www-authenticate']).toBe('ApiKey realm="api"');
  });
});
