import type { INestApplication } from '@nestjs/common';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { captureProcessOutput } from '../fixtures/log-capture.js';
import { CallerResolver, ReportsResolver, graphQLModule } from '../fixtures/graphql.js';

/*
 * The README's GraphQL recipe on a real Apollo server (@nestjs/apollo), queried over
 * HTTP the way any GraphQL client does: POST /graphql, then read `data` and `errors`.
 */
describe.each(ADAPTERS)('GraphQL (Apollo) on %s', (adapter) => {
  let app: INestApplication;
  let service: ApiKeyService;
  let analyst: { key: string; id: string };
  let plain: string;

  /** Sends one query, with the given headers, and returns the HTTP status and the JSON body. */
  async function gql(query: string, headers: Record<string, string> = {}) {
    const response = await request(app.getHttpServer()).post('/graphql').set(headers).send({ query });
    return { status: response.status, body: response.body as { data?: any; errors?: any[] } };
  }

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'gql_' }), graphQLModule()], {
      controllers: [],
      providers: [ReportsResolver, CallerResolver],
    });
    service = app.get(ApiKeyService);
    const issued = await service.issue({ ownerId: 'analyst-1', name: 'analyst key', scopes: ['reports:read'] });
    analyst = { key: issued.key, id: issued.apiKey.id };
    plain = (await service.issue({ ownerId: 'user-2', name: 'plain key', scopes: [] })).key;
  });
  afterAll(() => app?.close());

  it('answers a query with a valid key; @ApiKeyOwner and @CurrentApiKey work in the resolver', async () => {
    const { status, body } = await gql('{ me { ownerId keyName scopes } }', { 'X-API-Key': analyst.key });
    expect(status).toBe(200);
    expect(body).toEqual({ data: { me: { ownerId: 'analyst-1', keyName: 'analyst key', scopes: ['reports:read'] } } });
  });

  it('accepts Authorization: Bearer too', async () => {
    const { body } = await gql('{ me { ownerId } }', { Authorization: `Bearer ${plain}` });
    expect(body).toEqual({ data: { me: { ownerId: 'user-2' } } });
  });

  it('refuses a query without a key with a GraphQL error carrying missing_api_key and the 401 body', async () => {
    const { status, body } = await gql('{ me { ownerId } }');
    // GraphQL reports a refused field in the body; @nestjs/apollo keeps the HTTP status 200.
    expect(status).toBe(200);
    expect(body).toEqual({
      data: null,
      errors: [
        {
          message: 'An API key is required.',
          locations: [{ line: 1, column: 3 }],
          path: ['me'],
          extensions: { statusCode: 401, error: 'Unauthorized', code: 'missing_api_key', message: 'An API key is required.' },
        },
      ],
    });
  });

  it('refuses a malformed key as invalid_api_key, without echoing it', async () => {
    const forged = `gql_${'A'.repeat(49)}`;
    const { body } = await gql('{ me { ownerId } }', { 'X-API-Key': forged });
    expect(body.data).toBeNull();
    expect(body.errors![0].extensions).toMatchObject({ code: 'invalid_api_key', statusCode: 401 });
    expect(JSON.stringify(body)).not.toContain(forged);
  });

  it('enforces @RequireScopes on a query, naming only what the query needs', async () => {
    const refused = await gql('{ reports }', { 'X-API-Key': plain });
    expect(refused.body.data).toEqual({ reports: null });
    expect(refused.body.errors![0].extensions).toMatchObject({
      code: 'insufficient_scope',
      statusCode: 403,
      requiredScopes: ['reports:read'],
      scopeMatch: 'all',
    });
    expect(refused.body.errors![0].extensions).not.toHaveProperty('scopes');
    const allowed = await gql('{ reports }', { 'X-API-Key': analyst.key });
    expect(allowed.body).toEqual({ data: { reports: ['q1', 'read by analyst key'] } });
  });

  it('refuses a revoked key', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'temp', name: 'temp', scopes: [] });
    expect((await gql('{ me { ownerId } }', { 'X-API-Key': key })).body).toEqual({ data: { me: { ownerId: 'temp' } } });
    await service.revoke(apiKey.id);
    const { body } = await gql('{ me { ownerId } }', { 'X-API-Key': key });
    expect(body.data).toBeNull();
    expect(body.errors![0].extensions).toMatchObject({ code: 'revoked_api_key', statusCode: 401 });
  });

  it('serves a @Public query without a key, and the key is not required there', async () => {
    expect((await gql('{ health }')).body).toEqual({ data: { health: 'ok (anonymous)' } });
  });

  it('refuses one field and answers the others in the same operation', async () => {
    // Guards run per top-level field: a refusal is a field error, not a failed request.
    const { status, body } = await gql('{ health reports me { ownerId } }', { 'X-API-Key': plain });
    expect(status).toBe(200);
    // The public field sees no key, whatever its siblings' checks attached to the request.
    expect(body.data).toEqual({ health: 'ok (anonymous)', reports: null, me: { ownerId: 'user-2' } });
    expect(body.errors!.map((e: any) => [e.path, e.extensions.code])).toEqual([[['reports'], 'insufficient_scope']]);
  });

  it('logs nothing for a refusal: a flood of bad keys must not flood the logs', async () => {
    const forged = `gql_${'B'.repeat(49)}`;
    const output = captureProcessOutput();
    try {
      const { body } = await gql('{ me { ownerId } }', { 'X-API-Key': forged });
      expect(body.errors![0].extensions.code).toBe('invalid_api_key');
    } finally {
      output.restore();
    }
    expect(output.lines.join('')).not.toMatch(/ExceptionsHandler|GraphQLError|invalid/);
  });
});

describe('GraphQL field resolvers', () => {
  let app: INestApplication;
  let service: ApiKeyService;

  const gql = async (query: string, key: string) =>
    (await request(app.getHttpServer()).post('/graphql').set('X-API-Key', key).send({ query })).body as { data?: any; errors?: any[] };

  afterAll(() => app?.close());

  it('are not guarded by default: a scope on a @ResolveField is not enforced', async () => {
    app = await bootApp('express', [ApiAuthModule.forRoot({ prefix: 'gql_' }), graphQLModule()], {
      controllers: [],
      providers: [ReportsResolver, CallerResolver],
    });
    service = app.get(ApiKeyService);
    const plain = (await service.issue({ ownerId: 'u', name: 'plain', scopes: [] })).key;
    // The pitfall the README warns about: Nest runs no enhancers on field resolvers by default.
    expect(await gql('{ me { ownerId secret } }', plain)).toEqual({ data: { me: { ownerId: 'u', secret: 's3cret' } } });
    await app.close();
  });

  it("are guarded with fieldResolverEnhancers: ['guards', 'filters']", async () => {
    app = await bootApp(
      'express',
      [ApiAuthModule.forRoot({ prefix: 'gql_' }), graphQLModule({ fieldResolverEnhancers: ['guards', 'filters'] })],
      { controllers: [], providers: [ReportsResolver, CallerResolver] },
    );
    service = app.get(ApiKeyService);
    const plain = (await service.issue({ ownerId: 'u', name: 'plain', scopes: [] })).key;
    const holder = (await service.issue({ ownerId: 'h', name: 'holder', scopes: ['secrets:read'] })).key;
    const refused = await gql('{ me { ownerId secret } }', plain);
    expect(refused.data).toEqual({ me: { ownerId: 'u', secret: null } });
    expect(refused.errors!.map((e: any) => [e.path, e.extensions.code, e.extensions.requiredScopes])).toEqual([
      [['me', 'secret'], 'insufficient_scope', ['secrets:read']],
    ]);
    expect(await gql('{ me { ownerId secret } }', holder)).toEqual({ data: { me: { ownerId: 'h', secret: 's3cret' } } });
  });
});

describe('the README recipe', () => {
  it('is the code this file runs: the guard and the filter match the fixture verbatim', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../docs/transports.md', import.meta.url)), 'utf8');
    const fixture = readFileSync(fileURLToPath(new URL('../fixtures/graphql.ts', import.meta.url)), 'utf8');
    const pieces = (source: string) => [
      /@Injectable\(\)\nexport class GqlApiKeyGuard[\s\S]*?\n}\n/.exec(source)?.[0],
      /\/\*\* Hands refusals[\s\S]*?\n}\n/.exec(source)?.[0],
      /GraphQLModule\.forRoot<ApolloDriverConfig>\(\{ driver: ApolloDriver, autoSchemaFile: true/.exec(source)?.[0],
    ];
    const inFixture = pieces(fixture);
    expect(inFixture.every((piece) => piece !== undefined)).toBe(true);
    expect(pieces(readme)).toEqual(inFixture);
  });
});

describe('the library itself', () => {
  /** The GraphQL packages a file imports, statically or dynamically. */
  const graphQLImports = (file: string) =>
    [...readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*['"]([^'"]+)['"]/g)]
      .map(([, specifier]) => specifier!)
      .filter((specifier) => /^(graphql|@nestjs\/graphql|@nestjs\/apollo|@apollo\/|@as-integrations\/)/.test(specifier));

  it('imports no GraphQL package anywhere: they are test-only dev dependencies', () => {
    const lib = fileURLToPath(new URL('../../lib/', import.meta.url));
    const files = readdirSync(lib, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(20);
    expect(files.filter((f) => graphQLImports(join(lib, f)).length > 0)).toEqual([]);
    // The same scan finds them in this test's fixture: the check can fail.
    expect(graphQLImports(fileURLToPath(new URL('../fixtures/graphql.ts', import.meta.url)))).toEqual([
      '@nestjs/apollo',
      '@nestjs/graphql',
      'graphql',
    ]);
  });
});
