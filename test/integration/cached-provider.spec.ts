import { Logger } from '@nestjs/common';
import KeyvRedis from '@keyv/redis';
import { createCache } from 'cache-manager';
import { Keyv } from 'keyv';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiKeyService, CachedBackend, MemoryBackend } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import {
  createRedisTwoTierBackend,
  REDIS_CACHED_L1_TTL_MS,
  RedisCacheBackend,
  RedisTwoTierBackend,
  type RedisTwoTierBackendOptions,
} from 'nestjs-api-auth/redis';
import { startCachedInstance, type CachedInstance } from '../fixtures/cached-instance.js';
import { CountingBackend } from '../fixtures/counting.backend.js';
import { closedPort, connectRedis, deleteNamespace, REDIS_URL, uniqueNamespace } from '../fixtures/redis.js';
import { expectUpdatesAndDeletesPropagate } from '../fixtures/propagation.js';
import { track, settlesWithoutTimers } from '../fixtures/settled.js';
import { pollUntil } from '../fixtures/wait-for.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;

/**
 * A TCP proxy in front of the real Redis that counts the bytes clients send through
 * it: zero bytes means zero commands, whatever the client library does internally.
 * `stop()` drops every connection and refuses new ones (Redis gone for these clients only).
 */
class CountingProxy {
  sent = 0;
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server) {}

  static async start(): Promise<CountingProxy> {
    const target = new URL(REDIS_URL);
    const server = createServer();
    const proxy = new CountingProxy(server);
    server.on('connection', (inbound) => {
      const outbound = connect(Number(target.port || 6379), target.hostname);
      for (const socket of [inbound, outbound]) {
        proxy.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          proxy.sockets.delete(socket);
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.on('data', (chunk: Buffer) => {
        proxy.sent += chunk.length;
        outbound.write(chunk);
      });
      outbound.on('data', (chunk: Buffer) => inbound.write(chunk));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

type Instance = CachedInstance;
const startInstance = startCachedInstance;

/**
 * The L1 TTL of instances one and two: far beyond any wait here, so when two stops
 * accepting a key it cached, only an invalidation message can have done it. How soon
 * the message arrives is measured by `npm run bench:propagation`, not by these tests.
 */
const LONG_L1_TTL_MS = 600_000;


async function subscriberCount(admin: Client, connectionName: string): Promise<number> {
  const list = await admin.sendCommand<string>(['CLIENT', 'LIST', 'TYPE', 'pubsub']);
  return list.split('\n').filter((line) => line.includes(` name=${connectionName} `)).length;
}

describe('the cached provider (createRedisTwoTierBackend): L1 + Redis cache + store, with pub/sub', () => {
  const namespace = uniqueNamespace('cached-provider').slice(0, -1);
  const store = new CountingBackend(new MemoryBackend()); // stands in for the shared database
  let admin: Client;
  let one: Instance;
  let two: Instance;

  beforeAll(async () => {
    admin = await connectRedis();
    one = await startInstance(namespace, store, { extra: { l1: { ttl: LONG_L1_TTL_MS } } });
    two = await startInstance(namespace, store, { extra: { l1: { ttl: LONG_L1_TTL_MS } } });
  });

  afterEach(() => vi.restoreAllMocks());

  afterAll(async () => {
    await one?.close();
    await two?.close();
    await deleteNamespace(admin, namespace);
    await admin?.close();
  });

  it('is an L1 over a RedisCacheBackend over the store, listening on the namespaced channel', async () => {
    expect(one.backend).toBeInstanceOf(CachedBackend);
    expect(one.backend.primary).toBeInstanceOf(RedisCacheBackend);
    expect(one.backend.redisCache.primary).toBe(store);
    expect(one.backend.invalidationBus.channel).toBe(`${namespace}:invalidate`);
    // The factory resolved only once both instances were listening.
    expect(one.backend.invalidationBus.isListening).toBe(true);
    expect(await subscriberCount(admin, `${namespace}:invalidation`)).toBe(2);
    expect(one.backend.cache.ttlMs).toBe(LONG_L1_TTL_MS);
  });

  it('a revoke on one instance is refused by the other, whose L1 would keep the key for minutes', async () => {
    const { key, apiKey } = await one.service.issue({ ownerId: 'o', name: 'n' });
    const { keyHash } = (await store.getById(apiKey.id))!;
    // A read that overlaps the arrival of the issue's own invalidation is not cached; the next one is.
    await pollUntil(async () => (await two.service.authenticate(key)).ok && two.backend.peekByHash(keyHash) !== undefined, 'two caching the key');

    await one.service.revoke(apiKey.id);
    await pollUntil(async () => !(await two.service.authenticate(key)).ok, 'two refusing the revoked key');
    expect(await two.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
  });

  it('propagates updates and deletes the same way', async () => {
    await expectUpdatesAndDeletesPropagate(one.service, two.service);
  });

  it('refuses a revoked key once the L1 ttl (1 s) has passed when the other instance has lost its subscription', async () => {
    // Three's bus goes through a proxy we can take away; its cache reads Redis directly.
    // Its L1 reads a clock of the test's, so "within the TTL" is decided by that clock.
    const proxy = await CountingProxy.start();
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    let now = Date.now();
    const three = await startInstance(namespace, store, { redisUrl: proxy.url, extra: { l1: { now: () => now } } });
    try {
      expect(three.backend.cache.ttlMs).toBe(REDIS_CACHED_L1_TTL_MS);
      const { key, apiKey } = await one.service.issue({ ownerId: 'o', name: 'n' });
      await proxy.stop(); // three hears nothing from now on
      await pollUntil(() => !three.backend.invalidationBus.isListening, 'three losing its subscription');
      expect((await three.service.authenticate(key)).ok).toBe(true); // fills three's L1
      const filledAt = now;

      await one.service.revoke(apiKey.id);
      // The message is lost: three answers from its L1 up to the end of the entry's TTL ...
      expect((await three.service.authenticate(key)).ok).toBe(true);
      now = filledAt + REDIS_CACHED_L1_TTL_MS - 1;
      expect((await three.service.authenticate(key)).ok).toBe(true);
      // ... and once it has run out, it reads the Redis cache, which the revoke already voided.
      now = filledAt + REDIS_CACHED_L1_TTL_MS;
      expect(await three.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
      expect(warn.mock.calls.some(([m]) => String(m).includes('Lost the API key invalidation subscription'))).toBe(true);
    } finally {
      await three.close();
    }
  });

  it('answers a warm key without a single Redis command, and a cold one with Redis', async () => {
    // Every connection of this instance (cache, publisher, subscriber) goes through the counting proxy.
    const proxy = await CountingProxy.start();
    const four = await startInstance(namespace, store, { redisUrl: proxy.url, cacheUrl: proxy.url });
    try {
      // Four hears the creation first: a read that overlapped its arrival would not be
      // cached, and the next one would go to Redis again.
      let heard = 0;
      const stopListening = four.backend.invalidationBus.subscribe(() => heard++);
      const { key } = await one.service.issue({ ownerId: 'o', name: 'warm' });
      await pollUntil(() => heard > 0, 'four hearing the creation');
      stopListening();
      const before = proxy.sent;
      expect((await four.service.authenticate(key)).ok).toBe(true); // L1 miss: read through Redis
      const cold = proxy.sent - before;
      expect(cold).toBeGreaterThan(0);

      store.reset();
      const warmStart = proxy.sent;
      for (let i = 0; i < 2_000; i++) expect((await four.service.authenticate(key)).ok).toBe(true);
      // A barrier on each connection a hit could use (commands go out in order, so once
      // both PINGs are answered, anything queued before them has been sent): exactly the
      // two PINGs' bytes, and nothing else, went through the proxy.
      await four.redis.ping();
      await ((await four.cacheStore.getClient()) as unknown as { ping(): Promise<string> }).ping();
      expect(proxy.sent - warmStart).toBe(2 * Buffer.byteLength('*1\r\n$4\r\nPING\r\n'));
      expect(store.calls('getByHash')).toBe(0);
      expect(store.calls('peekByHash')).toBe(0);
    } finally {
      await four.close();
      await proxy.stop();
    }
  });

  it('closes the subscriber it opened, never the Redis client, cache or store it was given; close is idempotent', async () => {
    const five = await startInstance(namespace, store, { extra: { bus: { connectionName: `${namespace}:five` } } });
    expect(await subscriberCount(admin, `${namespace}:five`)).toBe(1);
    await five.backend.close();
    await five.backend.onModuleDestroy(); // what Nest calls: a second close is harmless
    await pollUntil(async () => (await subscriberCount(admin, `${namespace}:five`)) === 0, 'the subscriber to close');
    expect(await five.redis.ping()).toBe('PONG');
    await five.cacheStore.set(`${namespace}:still-open`, 'yes');
    expect(await five.cacheStore.get(`${namespace}:still-open`)).toBe('yes');
    await five.cacheStore.delete(`${namespace}:still-open`);
    await five.close();
  });

  it('starts, and answers from the store, when Redis is down at start-up; closes without waiting for it', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const deadUrl = `redis://127.0.0.1:${await closedPort()}`;
    const redis = createClient({ url: deadUrl, disableOfflineQueue: true });
    redis.on('error', () => undefined);
    const cacheStore = new KeyvRedis({ url: deadUrl, socket: { reconnectStrategy: () => 200 } });
    cacheStore.on('error', () => undefined);
    const cache = createCache({ stores: [new Keyv({ store: cacheStore, namespace: `${namespace}-cache` })] });
    const local = new MemoryBackend();

    // Fake timers, so "starts without waiting for Redis" means: the factory resolves at
    // its connectTimeoutMs (200 ms on the fake clock), not a moment before, and not later.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let backend: RedisTwoTierBackend;
    try {
      const starting = track(createRedisTwoTierBackend({ redis, cache, primary: local, ttl: 60_000, namespace, connectTimeoutMs: 200 }));
      await vi.advanceTimersByTimeAsync(199);
      expect(starting.settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await settlesWithoutTimers(starting)).toBe(true);
      expect(starting.error).toBeUndefined();
      backend = starting.value!;
    } finally {
      vi.useRealTimers();
    }
    expect(warn.mock.calls.some(([m]) => String(m).includes('invalidation subscription is not up yet'))).toBe(true);

    const service = new ApiKeyService(resolveApiAuthOptions({ backend, prefix: 'cp_', trackUsage: false }));
    // Writes through the provider need Redis (refused: below); this key is stored directly.
    const { key, apiKey } = await new ApiKeyService(resolveApiAuthOptions({ backend: local, prefix: 'cp_', trackUsage: false })).issue({
      ownerId: 'o',
      name: 'n',
    });
    expect((await service.authenticate(key)).ok).toBe(true);
    // Redis cannot hold back the cached copies, so the revoke is refused and nothing changes.
    await expect(service.revoke(apiKey.id)).rejects.toThrow(/The API key write was refused and nothing was written/);
    expect((await local.getById(apiKey.id))?.revokedAt).toBeNull();
    expect((await service.authenticate(key)).ok).toBe(true);

    // A subscriber still trying to reach Redis would keep close() pending until Redis is
    // back, which it never is here: that it resolves at all is the check.
    await backend.close();
    expect(backend.invalidationBus.isListening).toBe(false);
    await cacheStore.disconnect(true).catch(() => undefined);
  });

  it('checks its options before opening anything', async () => {
    const cache = createCache();
    expect(() => new RedisTwoTierBackend({ cache, primary: store, ttl: 1_000 } as unknown as RedisTwoTierBackendOptions)).toThrow(
      /"redis" must be a node-redis client/,
    );
    expect(() => new RedisTwoTierBackend({ redis: admin, cache, primary: store, ttl: 1_000, connectTimeoutMs: -1 })).toThrow(
      /"connectTimeoutMs"/,
    );
    expect(() => new RedisTwoTierBackend({ redis: admin, cache, primary: store, ttl: 0 })).toThrow(/"ttl"/);
    expect(() => new RedisTwoTierBackend({ redis: admin, cache, primary: store, ttl: 1_000, l1: { maxEntries: 0 } })).toThrow(
      /"maxEntries"/,
    );
  });
});
