import SwaggerParser from '@apidevtools/swagger-parser';
import { Controller, Get, Post, UseGuards, type DynamicModule, type INestApplication, type Type } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { DECORATORS, DocumentBuilder, type OpenAPIObject } from '@nestjs/swagger';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyGuard, ApiKeyService, MemoryBackend, MemoryRateLimiter, Public, RequireEnvironment, RequireScopes } from 'nestjs-api-auth';
import { createApiAuthDocument } from 'nestjs-api-auth/swagger';
import { ADAPTERS, GuardedController, bootApp, type Adapter } from '../fixtures/app.js';
import { schemaFaults } from '../fixtures/openapi-schema-check.js';
import { bootPolicyApp, call } from '../fixtures/rate-limit.setups.js';

/** Like `bootApp`, with a global prefix (which must be set before `init`). */
async function bootPrefixed(adapter: Adapter, imports: DynamicModule[], controllers: Type[], providers: Type[], prefix: string) {
  const moduleRef = await Test.createTestingModule({ imports, controllers, providers }).compile();
  const app = adapter === 'fastify' ? moduleRef.createNestApplication(new FastifyAdapter()) : moduleRef.createNestApplication();
  app.setGlobalPrefix(prefix);
  await app.init();
  return app;
}

@Controller('free')
class UnguardedController {
  @Get()
  free() {
    return { free: true };
  }
}

@Controller('mixed')
class MethodGuardedController {
  @Get('guarded')
  @UseGuards(ApiKeyGuard)
  guarded() {
    return {};
  }

  @Get('open')
  open() {
    return {};
  }

  @Get('live')
  @UseGuards(ApiKeyGuard)
  @RequireEnvironment('live')
  live() {
    return {};
  }
}

/** A guard subclass, as a GraphQL or WebSocket user would write, still counts. */
class CustomApiKeyGuard extends ApiKeyGuard {}

@Controller('custom')
@UseGuards(CustomApiKeyGuard)
class SubclassGuardedController {
  @Post()
  @RequireScopes('custom:write')
  write() {
    return {};
  }
}

/** `${METHOD} ${path}` of every operation, and of those with a security requirement. */
function operations(document: OpenAPIObject) {
  const all: string[] = [];
  const secured: string[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item as Record<string, any>)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const id = `${method.toUpperCase()} ${path}`;
      all.push(id);
      if (operation.security?.length) secured.push(id);
    }
  }
  return { all: all.sort(), secured: secured.sort() };
}

/** Validates the document, plus what swagger-parser leaves out: security requirements name defined schemes. */
async function validate(document: OpenAPIObject) {
  await expect(SwaggerParser.validate(structuredClone(document) as any)).resolves.toBeTruthy();
  const schemes = Object.keys(document.components?.securitySchemes ?? {});
  for (const item of Object.values(document.paths)) {
    for (const operation of Object.values(item as Record<string, any>)) {
      for (const requirement of operation.security ?? []) expect(schemes).toEqual(expect.arrayContaining(Object.keys(requirement)));
    }
  }
}

const op = (document: OpenAPIObject, method: string, path: string) => (document.paths[path] as any)?.[method];

/** The `RateLimit-*` and `X-Quota-*` headers, as documented on a guarded operation's 429 and success responses. */
const RATE_LIMIT_HEADERS = {
  'RateLimit-Limit': { description: expect.any(String), schema: { type: 'integer', minimum: 1 } },
  'RateLimit-Remaining': { description: expect.any(String), schema: { type: 'integer', minimum: 0 } },
  'RateLimit-Reset': { description: expect.any(String), schema: { type: 'integer', minimum: 1 } },
  'X-Quota-Remaining': { description: expect.any(String), schema: { type: 'integer', minimum: 0 } },
  'X-Quota-Reset': { description: expect.any(String), schema: { type: 'integer', minimum: 1 } },
};

/** The 429 of every guarded operation. */
const LIMIT_RESPONSE = {
  description: expect.stringMatching(/rate_limited.*quota_exhausted/),
  headers: {
    'Retry-After': { description: expect.any(String), schema: { type: 'integer', minimum: 1 } },
    ...RATE_LIMIT_HEADERS,
  },
  content: { 'application/json': { schema: { $ref: '#/components/schemas/ApiKeyLimitErrorResponse' } } },
};

const MANAGEMENT = [
  'POST /v1/api-keys',
  'GET /v1/api-keys',
  'GET /v1/api-keys/{id}',
  'PATCH /v1/api-keys/{id}',
  'POST /v1/api-keys/{id}/revoke',
  'POST /v1/api-keys/{id}/rotate',
  'DELETE /v1/api-keys/{id}',
  'POST /v1/api-keys/{id}/disable',
  'POST /v1/api-keys/{id}/enable',
  'POST /v1/api-keys/{id}/quota',
];

describe.each(ADAPTERS)('OpenAPI document with per-controller guards over %s', (adapter) => {
  let app: INestApplication;
  let document: OpenAPIObject;

  beforeAll(async () => {
    app = await bootPrefixed(
      adapter,
      [ApiAuthModule.forRoot({ prefix: 'doc_', header: 'X-API-Key', routes: true })],
      [GuardedController, UnguardedController, MethodGuardedController, SubclassGuardedController],
      [CustomApiKeyGuard],
      'v1',
    );
    document = createApiAuthDocument(app, new DocumentBuilder().setTitle('test').setVersion('1').build());
  });
  afterAll(() => app?.close());

  it('validates against the OpenAPI 3.0 schema', async () => {
    await validate(document);
  });

  it('secures exactly the routes the guard protects', () => {
    const { all, secured } = operations(document);
    const expected = [
      'GET /v1/t/me',
      'GET /v1/t/scope-of',
      'GET /v1/t/write',
      'GET /v1/t/any',
      'GET /v1/mixed/guarded',
      'GET /v1/mixed/live',
      'POST /v1/custom',
      ...MANAGEMENT,
    ].sort();
    expect(secured).toEqual(expected);
    // The public and unguarded routes are in the document, without security.
    expect(all).toEqual(expect.arrayContaining(['GET /v1/t/open', 'GET /v1/free', 'GET /v1/mixed/open']));
    expect(all.length).toBe(expected.length + 3);
    expect(document.security).toBeUndefined();
  });

  it('registers the schemes under the configured header and bearer', () => {
    expect(document.components?.securitySchemes).toEqual({
      'X-API-Key': expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
      bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    });
    expect(op(document, 'get', '/v1/t/me').security).toEqual([{ 'X-API-Key': [] }, { bearer: [] }]);
  });

  it('adds 401, 403, 429 and 503 to guarded routes, naming the refusals each can give, and none to public ones', () => {
    const me = op(document, 'get', '/v1/t/me');
    expect(Object.keys(me.responses).sort()).toEqual(['200', '401', '403', '429', '503']);
    // Any guarded route refuses a key whose IP allowlist leaves the caller out...
    expect(me.responses['403'].description).toContain('ip_not_allowed');
    expect(me.responses['403'].description).not.toContain('insufficient_scope');
    expect(me.responses['403'].description).not.toContain('environment_not_allowed');
    // ...and names the scope and environment refusals where the route sets them.
    const write = op(document, 'get', '/v1/t/write');
    expect(Object.keys(write.responses).sort()).toEqual(['200', '401', '403', '429', '503']);
    expect(write.responses['403'].description).toContain('ip_not_allowed');
    expect(write.responses['403'].description).toContain('all of: things:read, things:write');
    expect(op(document, 'get', '/v1/t/any').responses['403'].description).toContain('one of: a, b');
    const live = op(document, 'get', '/v1/mixed/live').responses['403'].description;
    expect(live).toContain('environment_not_allowed');
    expect(live).toContain('one of: live');
    expect((document.components?.schemas as Record<string, any>).ApiKeyErrorResponse.properties.requiredEnvironments).toMatchObject({
      type: 'array',
      items: { type: 'string' },
    });
    expect(op(document, 'post', '/v1/custom')['x-required-scopes']).toEqual({ scopes: ['custom:write'], match: 'all' });
    for (const [method, path] of [['get', '/v1/t/open'], ['get', '/v1/free'], ['get', '/v1/mixed/open']]) {
      const open = op(document, method!, path!);
      expect(open.security, path).toBeUndefined();
      expect(Object.keys(open.responses), path).toEqual(['200']);
    }
  });

  it('adds 429 to every guarded operation and RateLimit-* to its success responses, neither to public ones', () => {
    const { all, secured } = operations(document);
    for (const id of all) {
      const [method, path] = id.split(' ');
      const operation = op(document, method!.toLowerCase(), path!);
      const success = Object.entries(operation.responses as Record<string, any>).filter(([status]) => status.startsWith('2'));
      expect(success.length, id).toBe(1);
      if (secured.includes(id)) {
        expect(operation.responses['429'], id).toEqual(LIMIT_RESPONSE);
        for (const [, response] of success) expect(response.headers, id).toMatchObject(RATE_LIMIT_HEADERS);
      } else {
        expect(operation.responses['429'], id).toBeUndefined();
        for (const [, response] of success) expect(response.headers, id).toBeUndefined();
      }
    }
    // Headers a management route documents itself stay beside them.
    expect(Object.keys(op(document, 'post', '/v1/api-keys').responses['201'].headers).sort()).toEqual([
      'Cache-Control',
      'ETag',
      'RateLimit-Limit',
      'RateLimit-Remaining',
      'RateLimit-Reset',
      'X-Quota-Remaining',
      'X-Quota-Reset',
    ]);
    expect((document.components?.schemas as Record<string, any>).ApiKeyLimitErrorResponse).toEqual({
      description: expect.any(String),
      allOf: [
        { $ref: '#/components/schemas/ApiKeyErrorResponse' },
        {
          type: 'object',
          properties: {
            statusCode: { type: 'integer', enum: [429] },
            error: { type: 'string', enum: ['Too Many Requests'] },
            code: { type: 'string', enum: ['rate_limited', 'quota_exhausted'] },
            retryAfterSeconds: { type: 'integer', minimum: 1, description: expect.any(String) },
          },
        },
      ],
    });
  });

  it('describes the management routes with request and response schemas', () => {
    const schemas = document.components?.schemas as Record<string, any>;
    const issue = op(document, 'post', '/v1/api-keys');
    expect(issue.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/IssueApiKeyRequest' });
    expect(issue.responses['201'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/IssuedApiKey' });
    expect(Object.keys(issue.responses).sort()).toEqual(['201', '400', '401', '403', '429', '503']);
    expect(issue.tags).toEqual(['API keys']);
    expect(schemas.IssueApiKeyRequest.additionalProperties).toBe(false);
    expect(schemas.IssueApiKeyRequest.required).toEqual(['name', 'scopes']);
    expect(Object.keys(schemas.ApiKey.properties)).not.toContain('keyHash');

    const list = op(document, 'get', '/v1/api-keys');
    expect(list.parameters.map((p: { name: string }) => p.name)).toEqual(['all', 'environment', 'status', 'ownerId', 'cursor', 'limit']);
    expect(list.responses['200'].content['application/json'].schema).toEqual({
      oneOf: [{ $ref: '#/components/schemas/ApiKeyPage' }, { $ref: '#/components/schemas/ApiKeyListAllPage' }],
    });
    expect(list.requestBody).toBeUndefined();

    const rotate = op(document, 'post', '/v1/api-keys/{id}/rotate');
    expect(rotate.parameters).toEqual([expect.objectContaining({ name: 'id', in: 'path', required: true })]);
    expect(rotate.requestBody.required).toBe(false);
    expect(rotate.responses['201'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/RotatedApiKey' });
    expect(Object.keys(rotate.responses).sort()).toEqual(['201', '400', '401', '403', '404', '409', '429', '503']);
    expect(rotate.responses['409'].description).toContain('already_rotated');
    expect(schemas.ApiKeyErrorResponse.properties.replacementId).toEqual(expect.objectContaining({ type: 'string' }));
    expect(Object.keys(op(document, 'delete', '/v1/api-keys/{id}').responses).sort()).toEqual(['204', '401', '403', '404', '429', '503']);
    expect(op(document, 'patch', '/v1/api-keys/{id}').requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/UpdateApiKeyRequest',
    });

    // Versions: ETag on single-key answers, If-Match and 412 on PATCH and revoke, ?cascade= on revoke.
    const patch = op(document, 'patch', '/v1/api-keys/{id}');
    const revoke = op(document, 'post', '/v1/api-keys/{id}/revoke');
    expect(patch.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`)).toEqual(['path:id', 'header:If-Match']);
    expect(revoke.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`)).toEqual(['path:id', 'query:cascade', 'header:If-Match']);
    expect(revoke.parameters[1].schema).toEqual({ type: 'boolean', default: true });
    for (const operation of [patch, revoke]) expect(operation.responses['412'].description).toContain('version_conflict');
    expect(Object.keys(op(document, 'get', '/v1/api-keys/{id}').responses['200'].headers)).toContain('ETag');
    expect(schemas.ApiKey.required).toEqual(expect.arrayContaining(['version', 'issuedById']));
    expect(schemas.ApiKey.properties.version).toMatchObject({ type: 'integer', minimum: 1 });
  });

  it('describes policy and environment on requests and responses (3.0 dialect), never counterKey', () => {
    const schemas = document.components?.schemas as Record<string, any>;
    const nullablePolicy = expect.objectContaining({ allOf: [{ $ref: '#/components/schemas/ApiKeyPolicy' }], nullable: true });
    expect(schemas.ApiKey.required).toEqual(expect.arrayContaining(['environment', 'policy']));
    expect(schemas.ApiKey.properties.environment).toMatchObject({ type: 'string', nullable: true });
    expect(schemas.ApiKey.properties.policy).toEqual(nullablePolicy);
    expect(schemas.IssueApiKeyRequest.properties.policy).toEqual(nullablePolicy);
    expect(schemas.UpdateApiKeyRequest.properties.policy).toEqual(nullablePolicy);
    // No environments configured: the only valid environment is none, so none is offered.
    expect(schemas.IssueApiKeyRequest.properties.environment).toBeUndefined();
    expect(schemas.UpdateApiKeyRequest.properties.environment).toBeUndefined();

    const policy = schemas.ApiKeyPolicy;
    expect(policy.additionalProperties).toBe(false);
    expect(Object.keys(policy.properties).sort()).toEqual(['allowedIps', 'quota', 'rateLimits']);
    expect(policy.properties.rateLimits.items).toMatchObject({
      additionalProperties: false,
      required: ['name', 'limit', 'windowMs'],
      properties: { limit: { type: 'integer', minimum: 1 }, windowMs: { type: 'integer', minimum: 1 } },
    });
    expect(policy.properties.quota).toMatchObject({ required: ['limit'], properties: { limit: { minimum: 0 }, refillIntervalMs: { minimum: 1 } } });
    expect(JSON.stringify(document)).not.toContain('counterKey');
  });

  it('leaves no trace on the handlers and gives the same document twice', () => {
    expect(JSON.stringify(document)).not.toContain('x-nestjs-api-auth');
    expect(Reflect.getOwnMetadata(DECORATORS.API_EXTENSION, GuardedController.prototype.me)).toBeUndefined();
    const again = createApiAuthDocument(app, new DocumentBuilder().setTitle('test').setVersion('1').build());
    expect(again).toEqual(document);
  });
});

@Controller()
class GlobalGuardController {
  @Get('health')
  @Public()
  health() {
    return {};
  }

  @Get('data')
  data() {
    return {};
  }
}

describe('OpenAPI document with a global guard, a custom header, no bearer and a query parameter', () => {
  let app: INestApplication;

  beforeAll(async () => {
    app = await bootApp(
      'express',
      [ApiAuthModule.forRoot({ header: 'X-Tenant-Key', bearer: false, queryParam: 'api_key' })],
      { controllers: [GlobalGuardController], providers: [{ provide: APP_GUARD, useClass: ApiKeyGuard }] },
    );
  });
  afterAll(() => app?.close());

  it.each(['3.0.0', '3.1.0'])('secures all but @Public routes and validates as OpenAPI %s', async (version) => {
    const config = new DocumentBuilder().setTitle('global').setOpenAPIVersion(version).build();
    const document = createApiAuthDocument(app, config);
    await validate(document);
    expect(operations(document).secured).toEqual(['GET /data']);
    expect(document.components?.securitySchemes).toEqual({
      'X-Tenant-Key': expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-Tenant-Key' }),
      'api-key-query': expect.objectContaining({ type: 'apiKey', in: 'query', name: 'api_key' }),
    });
    expect(op(document, 'get', '/data').security).toEqual([{ 'X-Tenant-Key': [] }, { 'api-key-query': [] }]);
    // Without the management routes only the guard's error schemas are added.
    expect(Object.keys(document.components?.schemas ?? {})).toEqual(['ApiKeyErrorResponse', 'ApiKeyLimitErrorResponse']);
    expect(op(document, 'get', '/data').responses['429']).toEqual(LIMIT_RESPONSE);
    expect(op(document, 'get', '/health').responses['429']).toBeUndefined();
  });

  it('refuses to overwrite a schema of the same name the app defined', () => {
    const config = new DocumentBuilder().setTitle('clash').build();
    config.components = { schemas: { ApiKeyErrorResponse: { type: 'string' } } };
    expect(() => createApiAuthDocument(app, config)).toThrow(/already defines a schema named "ApiKeyErrorResponse"/);
  });
});

describe('OpenAPI document of the management routes with environments', () => {
  let app: INestApplication;

  beforeAll(async () => {
    app = await bootApp(
      'express',
      [ApiAuthModule.forRoot({ prefix: 'env_', environment: 'live', acceptEnvironments: ['live', 'test'], routes: true })],
      { controllers: [] },
    );
  });
  afterAll(() => app?.close());

  it.each(['3.0.0', '3.1.0'])('offers the accepted environments on issue and validates as OpenAPI %s', async (version) => {
    const document = createApiAuthDocument(app, new DocumentBuilder().setTitle('envs').setOpenAPIVersion(version).build());
    await validate(document);
    const schemas = document.components?.schemas as Record<string, any>;
    expect(schemas.IssueApiKeyRequest.properties.environment).toMatchObject({ type: 'string', enum: ['live', 'test'] });
    if (version === '3.1.0') {
      expect(schemas.ApiKey.properties.environment.type).toEqual(['string', 'null']);
      expect(schemas.ApiKey.properties.policy.oneOf).toEqual([{ $ref: '#/components/schemas/ApiKeyPolicy' }, { type: 'null' }]);
    } else {
      expect(schemas.ApiKey.properties.policy.nullable).toBe(true);
    }
  });
});

const LIMIT_HEADERS = ['retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'];

/** What of the guard's limit headers a response carried is undocumented, or breaks its documented schema. */
function headerFaults(documented: Record<string, any> | undefined, headers: Headers): string[] {
  const faults: string[] = [];
  for (const name of LIMIT_HEADERS) {
    const value = headers.get(name);
    if (value === null) continue;
    const entry = Object.entries(documented ?? {}).find(([key]) => key.toLowerCase() === name);
    if (!entry) faults.push(`${name}: not documented`);
    else if (!/^\d+$/.test(value)) faults.push(`${name}: ${value} is not an integer`);
    else faults.push(...schemaFaults({}, entry[1].schema, Number(value), name));
  }
  return faults;
}

const present = (headers: Headers) => LIMIT_HEADERS.filter((name) => headers.has(name));

describe.each(ADAPTERS)('the documented 429 against what the guard sends over %s', (adapter) => {
  let app: INestApplication;
  let url: string;
  let service: ApiKeyService;

  beforeAll(async () => {
    ({ app, url } = await bootPolicyApp(adapter, { prefix: 'oa_', backend: new MemoryBackend(), rateLimiter: new MemoryRateLimiter() }));
    service = app.get(ApiKeyService);
  });
  afterAll(() => app?.close());

  it.each(['3.0.0', '3.1.0'])('real 429 bodies and limit headers fit the OpenAPI %s document', async (version) => {
    const document = createApiAuthDocument(app, new DocumentBuilder().setTitle('limits').setOpenAPIVersion(version).build());
    await validate(document);
    const ping = op(document, 'get', '/p/ping');
    const schema = ping.responses['429'].content['application/json'].schema;

    const issue = (name: string, policy: object) => service.issue({ ownerId: 'openapi-owner', name, policy });
    const burst = await issue('burst', { rateLimits: [{ name: 'burst', limit: 1, windowMs: 60_000 }] });
    const spent = await issue('spent', { quota: { limit: 0 } });
    const refilling = await issue('refilling', { quota: { limit: 0, refillIntervalMs: 60_000 } });

    const allowed = await call(url, '/p/ping', burst.key);
    expect(allowed.status).toBe(200);
    expect(present(allowed.headers)).toEqual(['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']);
    expect(headerFaults(ping.responses['200'].headers, allowed.headers)).toEqual([]);

    const refusals = [await call(url, '/p/ping', burst.key), await call(url, '/p/ping', spent.key), await call(url, '/p/ping', refilling.key)];
    expect(refusals.map((r) => [r.status, r.body.code])).toEqual([
      [429, 'rate_limited'],
      [429, 'quota_exhausted'],
      [429, 'quota_exhausted'],
    ]);
    // Every shape the guard sends: with every header, with none (a quota that never refills), with Retry-After only.
    expect(refusals.map((r) => present(r.headers))).toEqual([LIMIT_HEADERS, [], ['retry-after']]);
    expect(refusals.map((r) => 'retryAfterSeconds' in r.body)).toEqual([true, false, true]);
    for (const refusal of refusals) {
      expect(schemaFaults(document, schema, refusal.body), JSON.stringify(refusal.body)).toEqual([]);
      expect(headerFaults(ping.responses['429'].headers, refusal.headers)).toEqual([]);
    }

    // The schema is narrow enough to tell a 429 from other refusals and a wrong field type.
    const unauthorized = await call(url, '/p/ping', undefined);
    expect(schemaFaults(document, schema, unauthorized.body)).toEqual([
      expect.stringMatching(/^\$\.statusCode: 401 /),
      expect.stringMatching(/^\$\.error: "Unauthorized" /),
      expect.stringMatching(/^\$\.code: "missing_api_key" /),
    ]);
    expect(schemaFaults(document, schema, { ...refusals[0]!.body, retryAfterSeconds: '1' })).toEqual([
      expect.stringMatching(/^\$\.retryAfterSeconds: "1" is not integer/),
    ]);
  });
});

describe('the root entry', () => {
  it('never imports @nestjs/swagger, statically or dynamically', () => {
    const lib = resolve(dirname(fileURLToPath(import.meta.url)), '../../lib');
    const seen = new Set<string>();
    const offenders: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(file, 'utf8');
      for (const [, specifier] of source.matchAll(/(?:from|import\()\s*['"]([^'"]+)['"]/g)) {
        if (specifier!.startsWith('@nestjs/swagger')) offenders.push(file);
        if (specifier!.startsWith('.')) visit(resolve(dirname(file), specifier!.replace(/\.js$/, '.ts')));
      }
    };
    visit(resolve(lib, 'index.ts'));
    expect(seen.size).toBeGreaterThan(10);
    expect([...seen].some((file) => file.endsWith('management/api-keys.controller.ts'))).toBe(true);
    expect(offenders).toEqual([]);
  });
});
