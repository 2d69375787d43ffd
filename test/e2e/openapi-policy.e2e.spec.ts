import SwaggerParser from '@apidevtools/swagger-parser';
import { Controller, Get, UseGuards, type INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject } from '@nestjs/swagger';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyGuard, ApiKeyService, OptionalApiKey } from 'nestjs-api-auth';
import { createApiAuthDocument } from 'nestjs-api-auth/swagger';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { schemaFaults } from '../fixtures/openapi-schema-check.js';

@Controller('doc')
@UseGuards(ApiKeyGuard)
class DocumentedController {
  @Get('optional')
  @OptionalApiKey()
  optional() {
    return {};
  }

  @Get('required')
  required() {
    return {};
  }
}

describe.each(ADAPTERS)('the OpenAPI document of quotas, optional keys and schemes over %s', (adapter) => {
  let app: INestApplication;
  const documents: Record<string, OpenAPIObject> = {};

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'doc_', schemes: ['Bearer', 'Api-Key'], routes: { path: 'api-keys' } })], {
      controllers: [DocumentedController],
    });
    for (const version of ['3.0.0', '3.1.0']) {
      documents[version] = createApiAuthDocument(app, new DocumentBuilder().setTitle('t').setOpenAPIVersion(version).build());
    }
  });
  afterAll(() => app?.close());

  it.each(['3.0.0', '3.1.0'])('validates as OpenAPI %s with the quota route', async (version) => {
    await expect(SwaggerParser.validate(structuredClone(documents[version]) as any)).resolves.toBeTruthy();
    const operation = documents[version]!.paths['/api-keys/{id}/quota']?.post as any;
    expect(operation.summary).toMatch(/quota balance/);
    expect(Object.keys(operation.responses).sort()).toEqual(['200', '400', '401', '403', '404', '429', '501', '503']);
    expect(operation.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ApiKeyQuotaChangeRequest' });
  });

  it('marks an @OptionalApiKey() route\'s security as optional, and only that one', () => {
    const paths = documents['3.0.0']!.paths;
    expect(paths['/doc/optional']!.get!.security).toContainEqual({});
    expect(paths['/doc/required']!.get!.security).not.toContainEqual({});
    expect(paths['/doc/optional']!.get!.responses['401']).toMatchObject({ description: expect.stringMatching(/calls without a key go through/) });
  });

  it('describes each configured Authorization scheme and the quota headers', () => {
    const document = documents['3.0.0']!;
    expect(document.components!.securitySchemes).toMatchObject({
      bearer: { type: 'http', scheme: 'bearer' },
      'authorization-api-key': { type: 'apiKey', in: 'header', name: 'Authorization', description: expect.stringContaining('Api-Key <key>') },
    });
    expect(document.paths['/doc/required']!.get!.security).toContainEqual({ 'authorization-api-key': [] });
    expect(Object.keys((document.paths['/doc/required']!.get!.responses['200'] as any).headers)).toEqual(
      expect.arrayContaining(['X-Quota-Remaining', 'X-Quota-Reset']),
    );
  });

  it('describes what the routes answer: GET /:id and POST /:id/quota bodies fit the ApiKey schema', async () => {
    const service = app.get(ApiKeyService);
    const admin = await service.issue({ ownerId: 'ops', name: 'a', scopes: ['api-keys:admin'] });
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'q', policy: { quota: { limit: 3, refillIntervalMs: 60_000 } } });
    const plain = await service.issue({ ownerId: 'o', name: 'p' });
    for (const version of ['3.0.0', '3.1.0']) {
      const document = documents[version]!;
      const schema = { $ref: '#/components/schemas/ApiKey' };
      const got = await request(app.getHttpServer()).get(`/api-keys/${apiKey.id}`).set('X-API-Key', admin.key).expect(200);
      const none = await request(app.getHttpServer()).get(`/api-keys/${plain.apiKey.id}`).set('X-API-Key', admin.key).expect(200);
      const set = await request(app.getHttpServer()).post(`/api-keys/${apiKey.id}/quota`).set('X-API-Key', admin.key).send({ add: 1 }).expect(200);
      for (const body of [got.body, none.body, set.body]) expect(schemaFaults(document, schema, body), JSON.stringify(body)).toEqual([]);
      expect(schemaFaults(document, schema, { ...got.body, quota: { limit: 3 } })).not.toEqual([]);
    }
  });
});
