import type { INestApplication } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { WsAdapter } from '@nestjs/platform-ws';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyGuard, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS } from '../fixtures/app.js';
import { connect, EventsGateway } from '../fixtures/ws-gateway.js';

describe.each(ADAPTERS)('WebSockets (platform-ws) on an %s server', (adapter) => {
  let app: INestApplication;
  let url: string;
  let service: ApiKeyService;
  let reader: { key: string; id: string };
  let plain: string;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [ApiAuthModule.forRoot({ prefix: 'ws_' })],
      providers: [EventsGateway],
    }).compile();
    app = adapter === 'fastify' ? moduleRef.createNestApplication(new FastifyAdapter()) : moduleRef.createNestApplication();
    app.useWebSocketAdapter(new WsAdapter(app));
    await app.listen(0, '127.0.0.1');
    url = `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/ws`;
    service = app.get(ApiKeyService);
    const issued = await service.issue({ ownerId: 'ws-user', name: 'socket reader', scopes: ['reports:read'] });
    reader = { key: issued.key, id: issued.apiKey.id };
    plain = (await service.issue({ ownerId: 'ws-other', name: 'plain', scopes: [] })).key;
  });
  afterAll(() => app?.close());

  it('authenticates messages with the key from the handshake header', async () => {
    const client = await connect(url, { 'X-API-Key': reader.key });
    try {
      expect(await client.ask('whoami')).toEqual({ event: 'whoami', data: { ownerId: 'ws-user' } });
      expect(await client.ask('reports')).toEqual({ event: 'reports', data: { reports: ['q1'], readBy: 'socket reader' } });
    } finally {
      client.close();
    }
  });

  it('accepts Authorization: Bearer in the handshake', async () => {
    const client = await connect(url, { Authorization: `Bearer ${plain}` });
    try {
      expect(await client.ask('whoami')).toEqual({ event: 'whoami', data: { ownerId: 'ws-other' } });
    } finally {
      client.close();
    }
  });

  it('reports a missing or bad key as an exception event with the HTTP body', async () => {
    const anonymous = await connect(url);
    const forged = await connect(url, { 'X-API-Key': `ws_${'A'.repeat(49)}` });
    try {
      const missing = await anonymous.ask('whoami');
      expect(missing.event).toBe('exception');
      expect(missing.data).toMatchObject({ statusCode: 401, code: 'missing_api_key' });
      expect((await forged.ask('whoami')).data).toMatchObject({ statusCode: 401, code: 'invalid_api_key' });
    } finally {
      anonymous.close();
      forged.close();
    }
  });

  it('enforces scopes per message, naming only what the handler needs', async () => {
    const client = await connect(url, { 'X-API-Key': plain });
    try {
      const refused = await client.ask('reports');
      expect(refused).toEqual({
        event: 'exception',
        data: expect.objectContaining({ statusCode: 403, code: 'insufficient_scope', requiredScopes: ['reports:read'] }),
      });
      // The connection survives a refusal.
      expect((await client.ask('whoami')).data).toEqual({ ownerId: 'ws-other' });
    } finally {
      client.close();
    }
  });

  it('re-checks the key on every message: a revoked key stops an open connection', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'ws-temp', name: 't', scopes: [] });
    const client = await connect(url, { 'X-API-Key': key });
    try {
      expect((await client.ask('whoami')).data).toEqual({ ownerId: 'ws-temp' });
      await service.revoke(apiKey.id);
      expect((await client.ask('whoami')).data).toMatchObject({ statusCode: 401, code: 'revoked_api_key' });
    } finally {
      client.close();
    }
  });
});

describe('GraphQL-shaped execution context', () => {
  // The part the library owns, without a server: for context type "graphql" the guard
  // reads the HTTP request from the resolver context (args[2].req) and attaches the key
  // there. graphql.e2e.spec.ts runs the README's recipe on a real Apollo server.
  it('authenticates from context.req and exposes the key to @ApiKeyOwner-style lookups', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [ApiAuthModule.forRoot({ prefix: 'gql_' })] }).compile();
    const app = moduleRef.createNestApplication();
    await app.init();
    try {
      const { key } = await app.get(ApiKeyService).issue({ ownerId: 'gql-user', name: 'g', scopes: [] });
      const guard = app.get(ApiKeyGuard);
      const req: Record<string, any> = { headers: { 'x-api-key': key } };
      class Resolver {
        me() {}
      }
      const context = new ExecutionContextHost([{}, {}, { req }, {}], Resolver, Resolver.prototype.me);
      context.setType('graphql');
      expect(await guard.canActivate(context)).toBe(true);
      expect(req.apiKey.ownerId).toBe('gql-user');

      const anonymous = new ExecutionContextHost([{}, {}, { req: { headers: {} } }, {}], Resolver, Resolver.prototype.me);
      anonymous.setType('graphql');
      await expect(Promise.resolve().then(() => guard.canActivate(anonymous))).rejects.toMatchObject({
        response: { code: 'missing_api_key' },
      });
    } finally {
      await app.close();
    }
  });
});
