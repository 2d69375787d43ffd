import { Controller, Get, type INestApplication } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { Query, Resolver } from '@nestjs/graphql';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyOwner, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { GqlApiKeyGuard, GraphQLErrorFilter, graphQLModule } from '../fixtures/graphql.js';

// The README's GraphQL guard registered globally (APP_GUARD), in an app that also
// serves REST routes: GraphQL calls get GraphQL errors, and REST calls keep their HTTP
// 401 (a GraphQLError thrown on a REST route would be an unknown error: a 500).

@Resolver()
class GlobalResolver {
  @Query(() => String)
  whoami(@ApiKeyOwner() ownerId: string): string {
    return ownerId;
  }
}

@Controller('rest')
class RestController {
  @Get('ping')
  ping(@ApiKeyOwner() ownerId: string) {
    return { ownerId };
  }
}

describe.each(ADAPTERS)('the GraphQL guard registered globally, on %s', (adapter) => {
  let app: INestApplication;
  let key: string;

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'gqlg_' }), graphQLModule()], {
      controllers: [RestController],
      providers: [
        GlobalResolver,
        { provide: APP_GUARD, useClass: GqlApiKeyGuard },
        { provide: APP_FILTER, useClass: GraphQLErrorFilter },
      ],
    });
    key = (await app.get(ApiKeyService).issue({ ownerId: 'owner-g', name: 'global' })).key;
  });
  afterAll(() => app?.close());

  it('answers GraphQL with the key and refuses it without, as a GraphQL error', async () => {
    const ok = await request(app.getHttpServer()).post('/graphql').set('X-API-Key', key).send({ query: '{ whoami }' });
    expect(ok.body).toEqual({ data: { whoami: 'owner-g' } });
    const refused = await request(app.getHttpServer()).post('/graphql').send({ query: '{ whoami }' });
    expect(refused.status).toBe(200);
    expect(refused.body.errors[0].extensions).toMatchObject({ statusCode: 401, code: 'missing_api_key' });
  });

  it('keeps the HTTP 401 and its challenge on a REST route of the same app', async () => {
    const refused = await request(app.getHttpServer()).get('/rest/ping');
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ statusCode: 401, code: 'missing_api_key' });
    expect(refused.headers['www-authenticate']).toBe('ApiKey realm="api"');
    const ok = await request(app.getHttpServer()).get('/rest/ping').set('X-API-Key', key);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ ownerId: 'owner-g' });
  });
});
