import { Controller, Get, UseGuards, type INestApplication } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { WsAdapter } from '@nestjs/platform-ws';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyGuard, ApiKeyOwner, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, type Adapter } from '../fixtures/app.js';
import { connect, EventsGateway } from '../fixtures/ws-gateway.js';

// `policy.allowedIps` over a real `ws` connection: the address is the connection's
// (the TCP peer of the upgrade), never X-Forwarded-For, even in an app that trusts a
// proxy for HTTP.

@Controller('h')
@UseGuards(ApiKeyGuard)
class HttpController {
  @Get('whoami')
  whoami(@ApiKeyOwner() ownerId: string) {
    return { ownerId };
  }
}

/** The gateway and an HTTP route, on `host`, trusting the loopback proxy for HTTP. */
async function boot(adapter: Adapter, host: string): Promise<{ app: INestApplication; port: number }> {
  const moduleRef = await Test.createTestingModule({
    imports: [ApiAuthModule.forRoot({ prefix: 'wsip_' })],
    controllers: [HttpController],
    providers: [EventsGateway],
  }).compile();
  let app: INestApplication;
  if (adapter === 'fastify') {
    app = moduleRef.createNestApplication(new FastifyAdapter({ trustProxy: 'loopback' }));
  } else {
    const express = moduleRef.createNestApplication<NestExpressApplication>();
    express.set('trust proxy', 'loopback');
    app = express;
  }
  app.useWebSocketAdapter(new WsAdapter(app));
  await app.listen(0, host);
  return { app, port: (app.getHttpServer().address() as AddressInfo).port };
}

/** Asks `whoami` once over a fresh connection with `key` in the handshake. */
async function whoami(url: string, key: string, headers: Record<string, string> = {}) {
  const client = await connect(url, { 'X-API-Key': key, ...headers });
  try {
    return await client.ask('whoami');
  } finally {
    client.close();
  }
}

describe.each(ADAPTERS)('IP allowlists over WebSockets (platform-ws) on an %s server', (adapter) => {
  describe('listening on 127.0.0.1', () => {
    let app: INestApplication;
    let port: number;
    let url: string;
    let service: ApiKeyService;

    beforeAll(async () => {
      ({ app, port } = await boot(adapter, '127.0.0.1'));
      url = `ws://127.0.0.1:${port}/ws`;
      service = app.get(ApiKeyService);
    });
    afterAll(() => app?.close());

    it('lets a key allowed only from 127.0.0.1/32 connect and call', async () => {
      const { key } = await service.issue({ ownerId: 'ws-local', name: 'loopback', policy: { allowedIps: ['127.0.0.1/32'] } });
      expect(await whoami(url, key)).toEqual({ event: 'whoami', data: { ownerId: 'ws-local' } });
    });

    it('refuses a key allowed only from 203.0.113.0/24 with an ip_not_allowed exception event, naming no address', async () => {
      const { key } = await service.issue({ ownerId: 'ws-office', name: 'office', policy: { allowedIps: ['203.0.113.0/24'] } });
      const client = await connect(url, { 'X-API-Key': key });
      try {
        const refused = await client.ask('whoami');
        expect(refused).toEqual({
          event: 'exception',
          data: { statusCode: 403, error: 'Forbidden', code: 'ip_not_allowed', message: 'The API key may not be used from this address.' },
        });
        expect(JSON.stringify(refused)).not.toMatch(/203\.0\.113|127\.0\.0\.1/);
        // Refused again on the next message: the check runs per message, not once per connection.
        expect((await client.ask('whoami')).data).toMatchObject({ code: 'ip_not_allowed' });
      } finally {
        client.close();
      }
    });

    it('never believes X-Forwarded-For on the handshake, though the app trusts the proxy for HTTP', async () => {
      const { key } = await service.issue({ ownerId: 'ws-spoof', name: 'spoof', policy: { allowedIps: ['203.0.113.0/24'] } });
      const forwarded = { 'X-Forwarded-For': '203.0.113.9' };
      // The same header over HTTP, from the trusted loopback proxy, is believed...
      const http = await fetch(`http://127.0.0.1:${port}/h/whoami`, { headers: { 'x-api-key': key, ...forwarded } });
      expect(http.status).toBe(200);
      // ...but the WebSocket sees the connection's address, which is not in the list.
      expect((await whoami(url, key, forwarded)).data).toMatchObject({ statusCode: 403, code: 'ip_not_allowed' });
      expect((await whoami(url, key, { Forwarded: 'for=203.0.113.9', 'X-Real-IP': '203.0.113.9' })).data).toMatchObject({
        code: 'ip_not_allowed',
      });
    });

    it('applies an update of the list to an open connection at its next message', async () => {
      const { key, apiKey } = await service.issue({ ownerId: 'ws-moves', name: 'moves', policy: { allowedIps: ['203.0.113.0/24'] } });
      const client = await connect(url, { 'X-API-Key': key });
      try {
        expect((await client.ask('whoami')).data).toMatchObject({ code: 'ip_not_allowed' });
        await service.update(apiKey.id, { policy: { allowedIps: ['127.0.0.0/8'] } });
        expect(await client.ask('whoami')).toEqual({ event: 'whoami', data: { ownerId: 'ws-moves' } });
      } finally {
        client.close();
      }
    });
  });

  describe('listening dual-stack on ::', () => {
    let app: INestApplication;
    let port: number;
    let service: ApiKeyService;

    beforeAll(async () => {
      ({ app, port } = await boot(adapter, '::'));
      service = app.get(ApiKeyService);
    });
    afterAll(() => app?.close());

    it('sees ::1 for an IPv6 loopback client, and matches it only against IPv6 rules', async () => {
      const v6 = await service.issue({ ownerId: 'ws-v6', name: 'v6', policy: { allowedIps: ['::1'] } });
      const v4 = await service.issue({ ownerId: 'ws-v4', name: 'v4', policy: { allowedIps: ['127.0.0.1/32'] } });
      const overV6 = `ws://[::1]:${port}/ws`;
      expect(await whoami(overV6, v6.key)).toEqual({ event: 'whoami', data: { ownerId: 'ws-v6' } });
      expect((await whoami(overV6, v4.key)).data).toMatchObject({ code: 'ip_not_allowed' });
    });

    it('matches an IPv4 client (reported as ::ffff:127.0.0.1) against IPv4 rules', async () => {
      const v6 = await service.issue({ ownerId: 'ws-v6', name: 'v6', policy: { allowedIps: ['::1'] } });
      const v4 = await service.issue({ ownerId: 'ws-v4', name: 'v4', policy: { allowedIps: ['127.0.0.1/32'] } });
      const overV4 = `ws://127.0.0.1:${port}/ws`;
      expect(await whoami(overV4, v4.key)).toEqual({ event: 'whoami', data: { ownerId: 'ws-v4' } });
      expect((await whoami(overV4, v6.key)).data).toMatchObject({ code: 'ip_not_allowed' });
    });
  });
});
