import { randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService, CachedBackend, MemoryBackend, type ApiKeyInvalidation } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { RedisInvalidationBus } from 'nestjs-api-auth/redis';
import { CapturingLogger } from '../fixtures/log-capture.js';
import { pollUntil } from '../fixtures/wait-for.js';
import { CLUSTER_PORTS, connectCluster, connectNode, killNode, nodeWithConnection, restoreNode, type TestCluster } from './cluster.fixture.js';

/** One app instance: its own cluster client, bus, L1 and service, over the shared primary. */
interface Instance {
  client: TestCluster;
  bus: RedisInvalidationBus;
  backend: CachedBackend;
  service: ApiKeyService;
}

/**
 * Resolves once `to` has received a barrier `from` publishes now: every invalidation
 * `from` published before it (same connection, one channel) has reached `to` first.
 */
async function heardBy(from: Instance, to: Instance): Promise<void> {
  const barrier = `barrier-${randomBytes(6).toString('hex')}`;
  let heard = false;
  const off = to.bus.subscribe((message) => {
    if (message.ids?.includes(barrier)) heard = true;
  });
  try {
    await from.bus.publish({ ids: [barrier] });
    await pollUntil(() => heard, 'the other instance hearing the barrier');
  } finally {
    off();
  }
}

describe('RedisInvalidationBus on a real 3+3 Redis Cluster, given a createCluster() client', () => {
  const namespace = `test-cbus-${randomBytes(6).toString('hex')}`;
  const primary = new MemoryBackend();
  const logger = new CapturingLogger();
  let one: Instance;
  let two: Instance;
  let killed: number | undefined;

  async function startInstance(name: string): Promise<Instance> {
    const client = await connectCluster();
    const bus = await new RedisInvalidationBus(client, { namespace, connectionName: `${namespace}-${name}` }).connect();
    // A TTL far beyond the test's patience: only the bus can make an instance forget a key.
    const backend = new CachedBackend(primary, { bus, ttl: 600_000, negativeTtl: 600_000 });
    const service = new ApiKeyService(resolveApiAuthOptions({ backend, prefix: 'cbus_', trackUsage: false }));
    return { client, bus, backend, service };
  }

  beforeAll(async () => {
    Logger.overrideLogger(logger);
    one = await startInstance('one');
    two = await startInstance('two');
  });
  afterAll(async () => {
    for (const instance of [one, two]) {
      instance?.backend.close();
      await instance?.bus.close();
      instance?.client.destroy();
    }
    if (killed !== undefined) await restoreNode(killed);
    Logger.overrideLogger(new Logger());
  });

  it('subscribes on one node, and hears what is published on every other node', async () => {
    const port = await nodeWithConnection(`${namespace}-two`);
    expect(port).toBeDefined();
    const received: ApiKeyInvalidation[] = [];
    const off = two.bus.subscribe((m) => received.push(m));
    // Classic PUBLISH is forwarded over the cluster bus: send from each of the other five.
    for (const other of CLUSTER_PORTS.filter((p) => p !== port)) {
      const node = await connectNode(other);
      await node.sendCommand(['PUBLISH', two.bus.channel, JSON.stringify({ v: 1, i: [`from-${other}`], t: [] })]);
      node.destroy();
    }
    await pollUntil(() => received.length === 5, 'five messages');
    off();
    expect(received.map((m) => m.ids?.[0]).sort()).toEqual(CLUSTER_PORTS.filter((p) => p !== port).map((p) => `from-${p}`).sort());
  });

  it('a revoke on one instance reaches the other through cluster.publish', async () => {
    const { key, apiKey } = await one.service.issue({ ownerId: 'o', name: 'n' });
    expect((await two.service.authenticate(key)).ok).toBe(true);
    await one.service.revoke(apiKey.id);
    // Decided by order, not by how soon: once a barrier sent after the revoke has arrived.
    await heardBy(one, two);
    expect(await two.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
  });

  it('when its node dies for good it moves to another node, clears the L1, and keeps receiving', async () => {
    const { key, apiKey } = await one.service.issue({ ownerId: 'o', name: 'moving' });
    expect((await two.service.authenticate(key)).ok).toBe(true);
    expect(two.backend.cache.size).toBeGreaterThan(0);
    let reconnected = 0;
    two.bus.onReconnect(() => reconnected++);

    const before = await nodeWithConnection(`${namespace}-two`);
    expect(before).toBeDefined();
    killed = before!;
    killNode(before!);

    // A generous count of polls, not a deadline: a busy machine makes the move slower, not wrong.
    await pollUntil(() => reconnected > 0, 'the subscription to move', { attempts: 6_000 });
    expect(two.backend.cache.size).toBe(0);
    expect(two.bus.isListening).toBe(true);
    const after = await nodeWithConnection(
      `${namespace}-two`,
      CLUSTER_PORTS.filter((p) => p !== before),
    );
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    expect(logger.lines.some((l) => l.startsWith('[warn]') && l.includes('Lost the API key invalidation subscription'))).toBe(true);
    expect(logger.lines.some((l) => l.includes('subscription is back; clearing the L1'))).toBe(true);

    // The publisher sends on a node that is up, never on the dead one: the revoke arrives.
    expect((await two.service.authenticate(key)).ok).toBe(true);
    await one.service.revoke(apiKey.id);
    await heardBy(one, two);
    expect(await two.service.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
  });
});
