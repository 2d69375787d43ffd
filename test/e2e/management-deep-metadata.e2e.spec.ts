import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';

/**
 * Bodies nested 20,000 deep. Both adapters' JSON parsers take them (V8's JSON.parse
 * does not recurse); the 500 came from JSON.stringify in the metadata size check.
 * Arrays keep the body under Express's default 100 kB limit, so it reaches the
 * validator; objects are 6 bytes a level, so the object case uses fewer levels there.
 */
const deepArrays = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
const deepObjects = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

describe.each(ADAPTERS)('deep metadata over the management routes on %s', (adapter) => {
  let app: INestApplication;
  let service: ApiKeyService;
  let admin: string;
  let targetId: string;

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'deep_', routes: true })], { controllers: [] });
    service = app.get(ApiKeyService);
    admin = (await service.issue({ ownerId: 'ops', name: 'admin', scopes: ['api-keys:admin'] })).key;
    targetId = (await service.issue({ ownerId: 'o', name: 'target', metadata: { kept: true } })).apiKey.id;
  });
  afterAll(() => app?.close());

  it.each([
    ['20,000 levels of arrays', `{"list":${deepArrays(20_000)}}`],
    ['15,000 levels of objects', deepObjects(15_000)],
    ['33 levels', deepObjects(33)],
  ])('%s: 400 validation_failed on POST and PATCH, nothing stored', async (_label, metadata) => {
    const post = await request(app.getHttpServer())
      .post('/api-keys')
      .set('X-API-Key', admin)
      .set('Content-Type', 'application/json')
      .send(`{"ownerId":"o","name":"deep","scopes":["r"],"metadata":${metadata}}`);
    expect(post.status).toBe(400);
    expect(post.body).toMatchObject({ statusCode: 400, code: 'validation_failed', field: 'metadata' });
    const patch = await request(app.getHttpServer())
      .patch(`/api-keys/${targetId}`)
      .set('X-API-Key', admin)
      .set('Content-Type', 'application/json')
      .send(`{"metadata":${metadata}}`);
    expect(patch.status).toBe(400);
    expect(patch.body).toMatchObject({ code: 'validation_failed', field: 'metadata' });
    expect(await service.countByOwner('o')).toBe(1);
    expect((await service.get(targetId))?.metadata).toEqual({ kept: true });
  });

  it('still takes 32 levels', async () => {
    const res = await request(app.getHttpServer())
      .patch(`/api-keys/${targetId}`)
      .set('X-API-Key', admin)
      .set('Content-Type', 'application/json')
      .send(`{"metadata":${deepObjects(32)}}`);
    expect(res.status).toBe(200);
    await service.update(targetId, { metadata: { kept: true } });
  });
});
