import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisRateLimiter, RedisUsageCoordinator } from 'nestjs-api-auth/redis';
import { connectCluster, connectNode, masterPortOf, masterPorts, type TestCluster } from './cluster.fixture.js';

describe('RedisRateLimiter and RedisUsageCoordinator on a real 3+3 Redis Cluster, given createCluster() clients', () => {
  const namespace = `test:limits:${randomBytes(6).toString('hex')}:`;
  let a: TestCluster;
  let b: TestCluster;

  beforeAll(async () => {
    // Two app instances: each its own cluster client.
    [a, b] = await Promise.all([connectCluster(), connectCluster()]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  /** Counter keys whose hash tags land on every master, so the test covers each shard. */
  async function keyIdsOnEveryMaster(): Promise<string[]> {
    const byMaster = new Map<number, string>();
    for (let i = 0; byMaster.size < 3 && i < 200; i++) {
      const id = `key-${i}`;
      const port = await masterPortOf(`${namespace}{${id}}:rl:x:1000`);
      if (!byMaster.has(port)) byMaster.set(port, id);
    }
    expect(byMaster.size).toBe(3);
    return [...byMaster.values()];
  }

  it('two instances, 40 concurrent requests per key over a limit of 10: exactly 10 pass, on every shard', async () => {
    const one = new RedisRateLimiter(a, { namespace });
    const two = new RedisRateLimiter(b, { namespace });
    const rule = { name: 'burst', limit: 10, windowMs: 60_000 };
    for (const id of await keyIdsOnEveryMaster()) {
      const decisions = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? one : two).consume(id, { rateLimits: [rule], quota: undefined, cost: 1 })),
      );
      expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
      expect(decisions.filter((d) => !d.allowed && d.reason === 'rate_limited')).toHaveLength(30);
    }
  });

  it('a quota shared by two instances is spent exactly once per credit', async () => {
    const one = new RedisRateLimiter(a, { namespace });
    const two = new RedisRateLimiter(b, { namespace });
    const quota = { limit: 7, refillIntervalMs: 3_600_000 };
    const decisions = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).consume('quota-key', { rateLimits: [], quota, cost: 1 })),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(7);
    expect(decisions.filter((d) => !d.allowed && d.reason === 'quota_exhausted')).toHaveLength(13);
  });

  it('sends each script straight to the master of its first declared key: no node ever answers MOVED', async () => {
    const masters = await masterPorts();
    for (const port of masters) {
      const node = await connectNode(port);
      await node.sendCommand(['CONFIG', 'RESETSTAT']);
      node.destroy();
    }
    const limiter = new RedisRateLimiter(a, { namespace });
    const coordinator = new RedisUsageCoordinator(a, { namespace: 'test-moved' });
    for (let i = 0; i < 30; i++) {
      await limiter.consume(`moved-${i}`, { rateLimits: [{ name: 'm', limit: 100, windowMs: 60_000 }], quota: undefined, cost: 1 });
      await coordinator.claim(`moved-${i}`, 60_000);
    }
    let redirects = 0;
    let scripts = 0;
    for (const port of masters) {
      const node = await connectNode(port);
      const errors = String(await node.sendCommand(['INFO', 'errorstats']));
      const commands = String(await node.sendCommand(['INFO', 'commandstats']));
      node.destroy();
      redirects += Number(/errorstat_MOVED:count=(\d+)/.exec(errors)?.[1] ?? 0);
      scripts += Number(/cmdstat_evalsha:calls=(\d+)/.exec(commands)?.[1] ?? 0);
    }
    expect(scripts).toBeGreaterThanOrEqual(60);
    expect(redirects).toBe(0);
  });

  it('answers health checks through the cluster client', async () => {
    await expect(new RedisRateLimiter(a, { namespace }).checkHealth()).resolves.toBeUndefined();
  });

  it('usage coordinator: of 20 concurrent claims from two instances exactly one wins, per key, on every shard', async () => {
    const ns = namespace.replace(/:$/, '').replace(/:/g, '-');
    const one = new RedisUsageCoordinator(a, { namespace: ns });
    const two = new RedisUsageCoordinator(b, { namespace: ns });
    const ports = new Set<number>();
    for (let i = 0; i < 12; i++) {
      const id = `usage-${i}`;
      ports.add(await masterPortOf(`${one.keyPrefix}${id}`));
      const claims = await Promise.all(Array.from({ length: 20 }, (_, j) => (j % 2 ? one : two).claim(id, 60_000)));
      expect(claims.filter((c) => c === true)).toHaveLength(1);
      expect(claims.filter((c) => typeof c === 'number' && c > 0 && c <= 60_000)).toHaveLength(19);
      // The winner's release frees the key for the next interval; the loser's does not.
      const winner = claims.indexOf(true) % 2 ? one : two;
      const loser = winner === one ? two : one;
      await loser.release(id);
      expect(typeof (await loser.claim(id, 60_000))).toBe('number');
      await winner.release(id);
      expect(await loser.claim(id, 60_000)).toBe(true);
      await loser.release(id);
    }
    // Twelve ids spread over more than one shard (3 masters): not a one-node test.
    expect(ports.size).toBeGreaterThan(1);
  });
});
