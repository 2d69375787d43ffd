import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BackendUnavailableError } from 'nestjs-api-auth';
import { RedisUsageCoordinator } from 'nestjs-api-auth/redis';
import { track } from '../fixtures/settled.js';
import { pollUntil } from '../fixtures/wait-for.js';
import { closedPort, connectRedis, deleteNamespace, scanKeys, startRedisProxy, uniqueNamespace, type RedisProxy } from '../fixtures/redis.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;

describe('RedisUsageCoordinator on a real Redis', () => {
  // `uniqueNamespace` ends with ":"; the coordinator adds its own separator.
  const namespace = uniqueNamespace('usage-coordinator').slice(0, -1);
  let one: Client;
  let two: Client;

  beforeAll(async () => {
    one = await connectRedis();
    two = await connectRedis();
  });

  afterAll(async () => {
    await deleteNamespace(one, `${namespace}:`);
    expect(await scanKeys(one, `${namespace}:`)).toEqual([]);
    await one?.close();
    await two?.close();
  });

  it('grants one claim per key per interval across instances, and tells the others how long it has left', async () => {
    const a = new RedisUsageCoordinator(one, { namespace });
    const b = new RedisUsageCoordinator(two, { namespace });
    expect(await a.claim('key-1', 60_000)).toBe(true);
    const left = await b.claim('key-1', 60_000);
    expect(typeof left).toBe('number');
    expect(left).toBeGreaterThan(59_000);
    expect(left).toBeLessThanOrEqual(60_000);
    expect(await a.claim('key-1', 60_000)).not.toBe(true); // the holder too: one write per interval
    expect(await b.claim('key-2', 60_000)).toBe(true); // keys are independent

    const ttl = Number(await one.sendCommand(['PTTL', `${namespace}:usage:key-1`]));
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(a.keyPrefix).toBe(`${namespace}:usage:`);
  });

  it('grants the next claim once the interval has passed', async () => {
    const a = new RedisUsageCoordinator(one, { namespace });
    const b = new RedisUsageCoordinator(two, { namespace });
    expect(await a.claim('short', 1_000)).toBe(true);
    expect(await b.claim('short', 1_000)).not.toBe(true);
    // Once Redis has let the claim go (its PX), not after a sleep that is hoped to be long enough.
    await pollUntil(async () => (await one.pTTL(`${namespace}:usage:short`)) === -2, 'the claim to expire');
    expect(await b.claim('short', 1_000)).toBe(true);
  });

  it('release gives back only its own claim', async () => {
    const a = new RedisUsageCoordinator(one, { namespace });
    const b = new RedisUsageCoordinator(two, { namespace });
    expect(await a.claim('released', 60_000)).toBe(true);
    await b.release('released'); // not b's claim: it stays
    expect(await b.claim('released', 60_000)).not.toBe(true);
    await a.release('released');
    expect(await b.claim('released', 60_000)).toBe(true);
  });

  it('rejects when Redis does not answer within timeoutMs', async () => {
    let proxy: RedisProxy | undefined;
    let client: Client | undefined;
    try {
      proxy = await startRedisProxy();
      // Fake timers from the start, so the claim's deadline is on the fake clock: only it,
      // at exactly 100 ms, ends a claim that Redis never answers.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      client = await connectRedis({ url: proxy.url });
      const coordinator = new RedisUsageCoordinator(client, { namespace, timeoutMs: 100 });
      expect(await coordinator.claim('through-proxy', 60_000)).toBe(true);
      proxy.freeze();
      const claim = track(coordinator.claim('frozen', 60_000));
      await vi.advanceTimersByTimeAsync(99);
      expect(claim.settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(String(claim.error)).toMatch(/within 100 ms/);
    } finally {
      vi.useRealTimers();
      client?.destroy();
      await proxy?.stop();
    }
  });

  it('validates its options and client', () => {
    expect(() => new RedisUsageCoordinator({} as never)).toThrow(/sendCommand/);
    expect(() => new RedisUsageCoordinator(one, { namespace: 'has space' })).toThrow(/"namespace"/);
    expect(() => new RedisUsageCoordinator(one, { timeoutMs: 0 })).toThrow(/"timeoutMs"/);
  });

  it('refuses an interval Redis could not expire', async () => {
    const a = new RedisUsageCoordinator(one, { namespace });
    await expect(a.claim('zero', 0)).rejects.toThrow(/positive integer interval/);
    expect(await scanKeys(one, `${namespace}:usage:zero`)).toEqual([]);
  });
});

describe('RedisUsageCoordinator with a client that is not ready', () => {
  it('rejects with BackendUnavailableError at once instead of waiting in the offline queue', async () => {
    const { createClient } = await import('redis');
    const client = createClient({ url: `redis://127.0.0.1:${await closedPort()}` });
    const coordinator = new RedisUsageCoordinator(client);
    // With fake timers, an answer before any time passes is one that waited for no timeout.
    vi.useFakeTimers();
    try {
      const claim = track(coordinator.claim('id', 1_000));
      await vi.advanceTimersByTimeAsync(0);
      expect(claim.error).toBeInstanceOf(BackendUnavailableError);
    } finally {
      vi.useRealTimers();
    }
  });
});
