import { type INestApplication, UseGuards } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { WsAdapter } from '@nestjs/platform-ws';
import { Test } from '@nestjs/testing';
import { SubscribeMessage, WebSocketGateway, type OnGatewayConnection } from '@nestjs/websockets';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiAuthModule,
  ApiKeyOwner,
  ApiKeyService,
  CurrentApiKey,
  MemoryBackend,
  Public,
  RequireScopes,
  type ApiKey,
  type ApiKeyView,
} from 'nestjs-api-auth';
import { ADAPTERS } from '../fixtures/app.js';
import { WsApiKeyGuard } from '../fixtures/ws-gateway.js';

type Socket = WebSocket & { request?: IncomingMessage };

/** What a handler saw of the caller through the decorators. */
const seen = (owner: string | undefined, apiKey: ApiKeyView | undefined) => ({ owner: owner ?? null, keyId: apiKey?.id ?? null });

/** A guarded gateway with one `@Public()` message. */
@WebSocketGateway({ path: '/ws-identity' })
@UseGuards(WsApiKeyGuard)
class IdentityGateway implements OnGatewayConnection {
  handleConnection(client: Socket, request: IncomingMessage) {
    client.request = request;
  }

  @SubscribeMessage('whoami')
  whoami(@ApiKeyOwner() owner: string, @CurrentApiKey() apiKey: ApiKeyView) {
    return { event: 'whoami', data: seen(owner, apiKey) };
  }

  @SubscribeMessage('public')
  @Public()
  open(@ApiKeyOwner() owner: string | undefined, @CurrentApiKey() apiKey: ApiKeyView | undefined) {
    return { event: 'public', data: seen(owner, apiKey) };
  }
}

/** A `@Public()` gateway with one message that requires a scope: the method's metadata wins. */
@WebSocketGateway({ path: '/ws-public' })
@UseGuards(WsApiKeyGuard)
@Public()
class PublicGateway implements OnGatewayConnection {
  handleConnection(client: Socket, request: IncomingMessage) {
    client.request = request;
  }

  @SubscribeMessage('open')
  open(@ApiKeyOwner() owner: string | undefined, @CurrentApiKey() apiKey: ApiKeyView | undefined) {
    return { event: 'open', data: seen(owner, apiKey) };
  }

  @SubscribeMessage('scoped')
  @RequireScopes('reports:read')
  scoped(@ApiKeyOwner() owner: string) {
    return { event: 'scoped', data: { owner } };
  }
}

/** A gateway guarded per method: its unguarded message must not read what the guarded one checked. */
@WebSocketGateway({ path: '/ws-mixed' })
class MixedGateway implements OnGatewayConnection {
  handleConnection(client: Socket, request: IncomingMessage) {
    client.request = request;
  }

  @SubscribeMessage('checked')
  @UseGuards(WsApiKeyGuard)
  checked(@ApiKeyOwner() owner: string, @CurrentApiKey() apiKey: ApiKeyView) {
    return { event: 'checked', data: seen(owner, apiKey) };
  }

  @SubscribeMessage('unguarded')
  unguarded(@ApiKeyOwner() owner: string | undefined, @CurrentApiKey() apiKey: ApiKeyView | undefined) {
    return { event: 'unguarded', data: seen(owner, apiKey) };
  }
}

/**
 * Lookups answer 0 to 11 microtask hops later, varying per call, so the check of one
 * message lands at every point of a concurrent public message's way to its handler.
 */
class SlowLookups extends MemoryBackend {
  private calls = 0;
  override async getByHash(keyHash: string): Promise<ApiKey | null> {
    for (let hop = this.calls++ % 12; hop > 0; hop--) await Promise.resolve();
    return super.getByHash(keyHash);
  }
}

/** A client that collects every message it receives. */
async function open(url: string, key?: string) {
  const socket = new WebSocket(url, { headers: key ? { 'X-API-Key': key } : {} });
  const inbox: Array<{ event: string; data: any }> = [];
  const waiters: Array<() => void> = [];
  socket.on('message', (raw) => {
    inbox.push(JSON.parse(raw.toString()));
    waiters.splice(0).forEach((wake) => wake());
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  /** Sends the events at once and resolves with the next `events.length` messages, in arrival order. */
  const send = async (...events: string[]) => {
    const from = inbox.length;
    for (const event of events) socket.send(JSON.stringify({ event, data: {} }));
    while (inbox.length < from + events.length) await new Promise<void>((wake) => waiters.push(wake));
    return inbox.slice(from, from + events.length);
  };
  return { send, ask: async (event: string) => (await send(event))[0]!, close: () => socket.close() };
}

const NOBODY = { owner: null, keyId: null };

const BACKENDS = [
  ['a MemoryBackend, whose checks finish synchronously', () => new MemoryBackend()],
  ['a store whose checks finish late', () => new SlowLookups()],
] as const;

describe.each(ADAPTERS)('identity on a WebSocket (platform-ws on %s) never outlives its check', (adapter) => {
 describe.each(BACKENDS)('with %s', (_label, makeBackend) => {
  let app: INestApplication;
  let base: string;
  let service: ApiKeyService;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [ApiAuthModule.forRoot({ prefix: 'wi_', backend: makeBackend() })],
      providers: [IdentityGateway, PublicGateway, MixedGateway],
    }).compile();
    app = adapter === 'fastify' ? moduleRef.createNestApplication(new FastifyAdapter()) : moduleRef.createNestApplication();
    app.useWebSocketAdapter(new WsAdapter(app));
    await app.listen(0, '127.0.0.1');
    base = `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    service = app.get(ApiKeyService);
  });
  afterAll(() => app?.close());

  it('a @Public() handler sees no key, even right after a checked message on the same connection', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'wi-user', name: 'k' });
    const client = await open(`${base}/ws-identity`, key);
    try {
      expect((await client.ask('whoami')).data).toEqual({ owner: 'wi-user', keyId: apiKey.id });
      expect((await client.ask('public')).data).toEqual(NOBODY);
      // And the identity comes back with the next check.
      expect((await client.ask('whoami')).data.owner).toBe('wi-user');
    } finally {
      client.close();
    }
  });

  it('a key revoked after use: refused on guarded messages, and invisible to a @Public() one', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'wi-revoked', name: 'k' });
    const client = await open(`${base}/ws-identity`, key);
    try {
      expect((await client.ask('whoami')).data.owner).toBe('wi-revoked');
      await service.revoke(apiKey.id);
      expect((await client.ask('public')).data).toEqual(NOBODY);
      expect((await client.ask('whoami')).data).toMatchObject({ statusCode: 401, code: 'revoked_api_key' });
      expect((await client.ask('public')).data).toEqual(NOBODY);
    } finally {
      client.close();
    }
  });

  it('a handler without the guard sees no key, after a checked message of the same connection', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'wi-mixed', name: 'k' });
    const client = await open(`${base}/ws-mixed`, key);
    try {
      expect((await client.ask('checked')).data).toEqual({ owner: 'wi-mixed', keyId: apiKey.id });
      expect((await client.ask('unguarded')).data).toEqual(NOBODY);
    } finally {
      client.close();
    }
  });

  it('public messages sent together with checked ones never see their key (100 of each, checks answered late)', async () => {
    const { key } = await service.issue({ ownerId: 'wi-concurrent', name: 'k' });
    const client = await open(`${base}/ws-identity`, key);
    try {
      const answers = [];
      for (let i = 0; i < 20; i++) answers.push(...(await client.send(...Array.from({ length: 10 }, (_, j) => (j % 2 ? 'public' : 'whoami')))));
      const publics = answers.filter((m) => m.event === 'public');
      const checked = answers.filter((m) => m.event === 'whoami');
      expect(publics).toHaveLength(100);
      expect(checked).toHaveLength(100);
      expect(publics.filter((m) => m.data.owner !== null || m.data.keyId !== null)).toEqual([]);
      expect(checked.every((m) => m.data.owner === 'wi-concurrent')).toBe(true);
    } finally {
      client.close();
    }
  });

  it('@RequireScopes() on a method guards it inside a @Public() gateway; the other messages stay open', async () => {
    const reader = await service.issue({ ownerId: 'wi-reader', name: 'r', scopes: ['reports:read'] });
    const plain = await service.issue({ ownerId: 'wi-plain', name: 'p', scopes: [] });
    const anonymous = await open(`${base}/ws-public`);
    const withoutScope = await open(`${base}/ws-public`, plain.key);
    const withScope = await open(`${base}/ws-public`, reader.key);
    try {
      expect((await anonymous.ask('open')).data).toEqual(NOBODY);
      expect((await anonymous.ask('scoped')).data).toMatchObject({ statusCode: 401, code: 'missing_api_key' });
      expect((await withoutScope.ask('scoped')).data).toMatchObject({ statusCode: 403, code: 'insufficient_scope' });
      expect((await withScope.ask('scoped')).data).toEqual({ owner: 'wi-reader' });
      expect((await withScope.ask('open')).data).toEqual(NOBODY);
    } finally {
      anonymous.close();
      withoutScope.close();
      withScope.close();
    }
  });
});
});
