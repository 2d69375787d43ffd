import SwaggerParser from '@apidevtools/swagger-parser';
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject } from '@nestjs/swagger';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, MemoryBackend } from 'nestjs-api-auth';
import { createApiAuthDocument } from 'nestjs-api-auth/swagger';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { schemaFaults } from '../fixtures/openapi-schema-check.js';
import { requiredMethodsOf } from '../fixtures/required-methods.js';

const op = (document: OpenAPIObject, method: string, path: string) => (document.paths[path] as any)?.[method];
const bodySchema = (operation: any, status: string) => operation.responses[status].content['application/json'].schema;

/** The documented disable/enable routes and the listing across owners, checked against what the routes answer. */
describe.each(ADAPTERS)('OpenAPI of key status and the listing across owners over %s', (adapter) => {
  let app: INestApplication;
  let service: ApiKeyService;
  let admin: string;

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'oks_', routes: true, backend: new MemoryBackend() })], { controllers: [] });
    service = app.get(ApiKeyService);
    admin = (await service.issue({ ownerId: 'ops', name: 'admin', scopes: ['api-keys:admin'] })).key;
  });
  afterAll(() => app?.close());

  it.each(['3.0.0', '3.1.0'])('validates as OpenAPI %s with the new routes, parameters and schemas', async (version) => {
    const document = createApiAuthDocument(app, new DocumentBuilder().setTitle('t').setOpenAPIVersion(version).build());
    await expect(SwaggerParser.validate(structuredClone(document) as any)).resolves.toBeTruthy();
    for (const verb of ['disable', 'enable']) {
      const operation = op(document, 'post', `/api-keys/{id}/${verb}`);
      expect(operation.parameters.map((p: { in: string; name: string }) => `${p.in}:${p.name}`)).toEqual(['path:id', 'header:If-Match']);
      expect(Object.keys(operation.responses).sort()).toEqual(['200', '400', '401', '403', '404', '409', '412', '429', '503']);
      expect(operation.responses['409'].description).toContain('key_revoked');
      expect(Object.keys(operation.responses['200'].headers)).toContain('ETag');
    }
    const list = op(document, 'get', '/api-keys');
    expect(list.parameters.find((p: { name: string }) => p.name === 'status').schema.enum).toEqual(['active', 'expired', 'revoked', 'disabled']);
    expect(list.responses['501'].description).toContain('list_all_unsupported');
    const schemas = document.components?.schemas as Record<string, any>;
    expect(schemas.ApiKey.required).toContain('disabledAt');
    expect(schemas.ApiKeyErrorResponse.properties.code.description).toMatch(/disabled_api_key.*key_revoked.*list_all_unsupported/s);
  });

  it.each(['3.0.0', '3.1.0'])('describes every body the routes answer (OpenAPI %s)', async (version) => {
    const document = createApiAuthDocument(app, new DocumentBuilder().setTitle('t').setOpenAPIVersion(version).build());
    const http = request(app.getHttpServer());
    const { key, apiKey } = await service.issue({ ownerId: 'tenant', name: 'k' });
    const disable = op(document, 'post', '/api-keys/{id}/disable');
    const disabled = await http.post(`/api-keys/${apiKey.id}/disable`).set('X-API-Key', admin);
    expect(schemaFaults(document, bodySchema(disable, '200'), disabled.body)).toEqual([]);
    const enabled = await http.post(`/api-keys/${apiKey.id}/enable`).set('X-API-Key', admin);
    expect(schemaFaults(document, bodySchema(op(document, 'post', '/api-keys/{id}/enable'), '200'), enabled.body)).toEqual([]);
    await http.post(`/api-keys/${apiKey.id}/disable`).set('X-API-Key', admin).expect(200);
    const refused = await http.get('/api-keys').set('X-API-Key', key);
    expect(refused.status).toBe(401);
    expect(schemaFaults(document, bodySchema(disable, '401'), refused.body)).toEqual([]);
    await service.revoke(apiKey.id);
    const conflict = await http.post(`/api-keys/${apiKey.id}/enable`).set('X-API-Key', admin);
    expect(conflict.status).toBe(409);
    expect(schemaFaults(document, bodySchema(disable, '409'), conflict.body)).toEqual([]);

    const list = op(document, 'get', '/api-keys');
    const all = await http.get('/api-keys').query({ all: 'true', limit: '1' }).set('X-API-Key', admin);
    const owned = await http.get('/api-keys').set('X-API-Key', admin);
    // Each fits exactly one of the two page shapes.
    for (const page of [all.body, owned.body]) expect(schemaFaults(document, bodySchema(list, '200'), page)).toEqual([]);
    expect(schemaFaults(document, bodySchema(list, '200'), { items: all.body.items })).toEqual([
      expect.stringMatching(/fits 0 of the oneOf/),
    ]);
  });

  it('documents the 501 of a backend without listAll', async () => {
    const bare = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'oks_', routes: true, backend: requiredMethodsOf(new MemoryBackend()) })], {
      controllers: [],
    });
    try {
      const key = (await bare.get(ApiKeyService).issue({ ownerId: 'ops', name: 'admin', scopes: ['api-keys:admin'] })).key;
      const document = createApiAuthDocument(bare, new DocumentBuilder().setTitle('t').build());
      const res = await request(bare.getHttpServer()).get('/api-keys').query({ all: 'true' }).set('X-API-Key', key);
      expect(res.status).toBe(501);
      expect(schemaFaults(document, bodySchema(op(document, 'get', '/api-keys'), '501'), res.body)).toEqual([]);
    } finally {
      await bare.close();
    }
  });
});
