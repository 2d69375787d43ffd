import { ConsoleLogger, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { createClient, type RedisClientType } from 'redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiKeyService, BackendUnavailableError, CachedBackend, MemoryBackend, type ApiKeyInvalidation } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { RedisInvalidationBus } from 'nestjs-api-auth/redis';
import { CapturingLogger } from '../fixtures/log-capture.js';
import { expectUpdatesAndDeletesPropagate } from '../fixtures/propagation.js';
import { track } from '../fixtures/settled.js';
import { pollUntil } from '../fixtures/wait-for.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** One app instance: its own Redis connection, bus, L1 and service, over the shared primary. */
interface Instance {
  client: RedisClientType;
  bus: RedisInvalidationBus;
  backend: CachedBackend;
  service: ApiKeyService;
}


describe('L1 invalidation across instances over Redis pub/sub', () => {
  // A namespace of its own, so parallel runs never hear each other.
  const namespace = `test-inv-${randomBytes(6).toString('hex')}`;
  const primary = new MemoryBackend(); // stands in for the shared database
  let admin: RedisClientType;
  let one: Instance;
  let two: Instance;

  async function startInstance(name: string, disableOfflineQueue: boolean): Promise<Instance> {
    // The subscriber is a duplicate, so it inherits the client's options; both settings must work.
    const client: RedisClientType = createClient({ url: REDIS_URL, disableOfflineQueue });
    client.on('error', () => undefined);
    await client.connect();
    const bus = await new RedisInvalidationBus(client, { namespace, connectionName: `${namespace}:${name}` }).connect();
    // A TTL far beyond the test's patience: only the bus can make an instance forget a key.
    const backend = new CachedBackend(primary, { bus, ttl: 600_000, negativeTtl: 600_000 });
    const service = new ApiKeyService(resolveApiAuthOptions({ backend, prefix: 'inv_', trackUsage: false }));
    return { client, bus, backend, service };
  }

  async function stopInstance(instance: Instance | undefined): Promise<void> {
    if (!instance) return;
    instance.backend.close();
    await instance.bus.close();
    await instance.client.close();
  }

  async function subscriberIds(connectionName: string): Promise<string[]> {
    const list = await admin.sendCommand<string>(['CLIENT', 'LIST', 'TYPE', 'pubsub']);
    return list
      .split('\n')
      .filter((line) => line.includes(` name=${connectionName} `))
      .map((line) => /(?:^|\s)id=(\d+)/.exec(line)![1]!);
  }

  beforeAll(async () => {
    admin = createClient({ url: REDIS_URL });
    await admin.connect();
    one = await startInstance('one', false);
    two = await startInstance('two', true);
  });

  afterAll(async () => {
    await stopInstance(one);
    await stopInstance(two);
    await admin?.close();
  });

  it('subscribes on a named connection of its own, on the namespaced channel', async () => {
    expect(one.bus.channel).toBe(`${namespace}:invalidate`);
    expect(await subscriberIds(`${namespace}:one`)).toHaveLength(1);
    const counts = (await admin.sendCommand(['PUBSUB', 'NUMSUB', one.bus.channel])) as [string, number];
    expect(Number(counts[1])).toBe(2);
  });

  it('a revoke on one instance is refused by the other, whose L1 would keep the key for ten minutes', async () => {
    const { key, apiKey } = await one.service.issue({ ownerId: 'o', name: 'n' });
    expect((await two.service.authenticate(key)).ok).toBe(true);
    const { keyHash } = (await primary.getById(apiKey.id))!;
    expect(two.backend.peekByHash(keyHash)).toBeDefined(); // served from two's L1 from now on
    await one.service.revoke(apiKey.id);
    // Only the message can end two's entry (its TTL is 600 s). How soon it does is
    // measured by `npm run bench:propagation`.
    await pollUntil(async () => !(await two.service.authenticate(key)).ok, 'two refusing the revoked key');
    expect(await two.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
  });

  it('propagates updates and deletes', async () => {
    await expectUpdatesAndDeletesPropagate(one.service, two.service);
  });

  it('clears the L1 when the subscriber connection is dropped and comes back, then keeps receiving', async () => {
    const { key, apiKey } = await one.service.issue({ ownerId: 'o', name: 'n' });
    expect((await two.service.authenticate(key)).ok).toBe(true);
    await two.service.authenticate(two.service.format.generate()); // a negative entry too
    expect(two.backend.cache.size).toBeGreaterThanOrEqual(2);

    const [id] = await subscriberIds(`${namespace}:two`);
    expect(id).toBeDefined();
    let reconnected = false;
    two.bus.onReconnect(() => (reconnected = true));
    // The loss is logged as a warning and the return as a log line, on purpose here: kept and asserted.
    const logs = new CapturingLogger();
    Logger.overrideLogger(logs);
    try {
      // Only this subscriber: `CLIENT KILL TYPE pubsub` would also cut other test files' connections.
      await admin.sendCommand(['CLIENT', 'KILL', 'ID', id!]);
      await pollUntil(() => reconnected, 'the subscriber to reconnect');
    } finally {
      Logger.overrideLogger(new ConsoleLogger());
    }
    expect(logs.lines.filter((line) => line.startsWith('[warn]'))).toEqual([
      expect.stringMatching(/^\[warn\] Lost the API key invalidation subscription; L1 entries stay at most their TTL old/),
    ]);
    expect(two.backend.cache.size).toBe(0);
    expect(two.bus.isListening).toBe(true);
    expect(await subscriberIds(`${namespace}:two`)).not.toContain(id);

    expect((await two.service.authenticate(key)).ok).toBe(true);
    await one.service.revoke(apiKey.id);
    await pollUntil(async () => !(await two.service.authenticate(key)).ok, 'two refusing the revoked key after the reconnect');
  });

  it('treats a message it cannot read as "drop everything"', async () => {
    const { key } = await one.service.issue({ ownerId: 'o', name: 'n' });
    await two.service.authenticate(key);
    expect(two.backend.cache.size).toBeGreaterThan(0);
    await admin.publish(two.bus.channel, '{"v":99,"i":"not a list"}');
    await pollUntil(() => two.backend.cache.size === 0, 'two dropping everything');
  });

  it('delivers what a custom sender publishes, decoded', async () => {
    const received: ApiKeyInvalidation[] = [];
    const off = one.bus.subscribe((m) => received.push(m));
    await two.bus.publish({ ids: ['id-1'], tags: [7, 4095], origin: 'custom' });
    // Only this sender's message: the unreadable one of the test before may still be on its way.
    const custom = () => received.filter((m) => m.origin === 'custom');
    await pollUntil(() => custom().length > 0, 'the custom message');
    off();
    expect(custom()).toEqual([{ ids: ['id-1'], tags: [7, 4095], all: false, origin: 'custom' }]);
  });

  it('refuses to publish a key hash, whether Redis is up or not, and sends nothing', async () => {
    const received: ApiKeyInvalidation[] = [];
    const off = one.bus.subscribe((m) => received.push(m));
    const hash = 'ab'.repeat(32);
    await expect(two.bus.publish({ ids: ['id-1'], hashes: [hash] } as ApiKeyInvalidation)).rejects.toThrow(/never by hash/);
    const offline = new RedisInvalidationBus(createClient({ url: REDIS_URL }), { namespace });
    await expect(offline.publish({ hashes: [hash] } as ApiKeyInvalidation)).rejects.toThrow(/never by hash/);
    await offline.close();
    // A message published after it arrives; the refused one never went out before it.
    await two.bus.publish({ ids: ['after'], origin: 'custom' });
    await pollUntil(() => received.length > 0, 'the message sent after');
    off();
    expect(received.map((m) => m.ids)).toEqual([['after']]);
  });

  it('hears an instance still on the previous format (ids and hashes): its revoke is refused at once', async () => {
    const { key, apiKey } = await one.service.issue({ ownerId: 'o', name: 'n' });
    const { keyHash } = (await primary.getById(apiKey.id))!;
    expect((await two.service.authenticate(key)).ok).toBe(true);
    expect(two.backend.peekByHash(keyHash)).toBeDefined();
    // What a not-yet-upgraded instance sends after revoking the key in the shared store.
    await primary.update(apiKey.id, { revokedAt: new Date(), updatedAt: new Date() });
    await admin.publish(two.bus.channel, JSON.stringify({ v: 1, o: 'old-instance', i: [apiKey.id], h: [keyHash] }));
    await pollUntil(() => two.backend.peekByHash(keyHash) === undefined, 'the old-format revoke');
    expect(await two.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
  });

  it('hears an instance still on the previous format create a key it remembered as unknown', async () => {
    const key = one.service.format.generate();
    expect(await two.service.authenticate(key)).toEqual({ ok: false, code: 'invalid_api_key' });
    // The old instance stores the key and announces it by hash, as format 1 did.
    const issued = await new ApiKeyService(resolveApiAuthOptions({ backend: primary, prefix: 'inv_', trackUsage: false })).import(
      { key },
      { ownerId: 'o', name: 'imported by an old instance' },
    );
    const { keyHash } = (await primary.getById(issued.id))!;
    expect(two.backend.peekByHash(keyHash)).toBeNull();
    await admin.publish(two.bus.channel, JSON.stringify({ v: 1, o: 'old-instance', i: [issued.id], h: [keyHash] }));
    await pollUntil(() => two.backend.peekByHash(keyHash) === undefined, 'the old-format creation');
    expect((await two.service.authenticate(key)).ok).toBe(true);
  });

  it('refuses to publish at once when its client is not connected, instead of queueing', async () => {
    const offline = createClient({ url: REDIS_URL });
    const bus = new RedisInvalidationBus(offline, { namespace });
    // With fake timers, an answer before any time passes is one that waited for no timeout.
    vi.useFakeTimers();
    try {
      const published = track(bus.publish({ ids: ['x'] }));
      await vi.advanceTimersByTimeAsync(0);
      expect(published.error).toBeInstanceOf(BackendUnavailableError);
    } finally {
      vi.useRealTimers();
    }
    await bus.close();
  });

  it('closes only the subscriber it opened, never the client it was given', async () => {
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    const bus = await new RedisInvalidationBus(client, { namespace, connectionName: `${namespace}:closing` }).connect();
    expect(await subscriberIds(`${namespace}:closing`)).toHaveLength(1);
    await bus.close();
    await pollUntil(async () => (await subscriberIds(`${namespace}:closing`)).length === 0, 'the subscriber to close');
    expect(client.isReady).toBe(true);
    expect(await client.ping()).toBe('PONG');
    await client.close();
  });
});

