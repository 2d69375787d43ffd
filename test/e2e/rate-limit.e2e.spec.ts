import { APP_GUARD } from '@nestjs/core';
import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyGuard, ApiKeyService, MemoryBackend, type RateLimiter } from 'nestjs-api-auth';
import { RedisRateLimiter } from 'nestjs-api-auth/redis';
import { ADAPTERS } from '../fixtures/app.js';
import { connectRedis, startRedisProxy, type RedisProxy } from '../fixtures/redis.js';
import { CapturingLogger } from '../fixtures/log-capture.js';
import {
  inOneWindow,
  bootPolicyApp,
  bootSetupApps,
  call,
  makeSetup,
  PolicyController,
  SETUP_NAMES,
  type Setup,
} from '../fixtures/rate-limit.setups.js';

const FIVE_PER_SECOND = { rateLimits: [{ name: 'burst', limit: 5, windowMs: 1_000 }] };

describe.each(ADAPTERS)('per-key rate limits over %s', (adapter) => {
  describe.each(SETUP_NAMES)('on the %s setup', (setupName) => {
    let setup: Setup;
    const apps: INestApplication[] = [];
    let urls: string[];
    let service: ApiKeyService;

    beforeAll(async () => {
      setup = await makeSetup(setupName, `rate-limit-${adapter}`);
      ({ urls, service } = await bootSetupApps(adapter, setup, 'rl_', apps));
    });
    afterAll(async () => {
      for (const app of apps) await app.close();
      await setup?.cleanup();
    });

    it(`a limit of 5 per second lets exactly 5 of 20 concurrent requests through${setupName === 'redis' ? ', across two instances' : ''}`, async () => {
      const responses = await inOneWindow(1_000, async () => {
        const { key } = await service.issue({ ownerId: 'rl-owner', name: 'burst', policy: FIVE_PER_SECOND });
        return Promise.all(Array.from({ length: 20 }, (_, i) => call(urls[i % urls.length]!, '/p/ping', key)));
      });
      const ok = responses.filter((r) => r.status === 200);
      const limited = responses.filter((r) => r.status === 429);
      // With two instances each got 10 of the 20: per-instance counting would let 10 through.
      expect(ok).toHaveLength(5);
      expect(limited).toHaveLength(15);
      // One increment per request: the allowed ones saw 4, 3, 2, 1, 0 remaining, each once.
      expect(ok.map((r) => Number(r.headers.get('ratelimit-remaining'))).sort()).toEqual([0, 1, 2, 3, 4]);
      for (const r of ok) {
        expect(r.headers.get('ratelimit-limit')).toBe('5');
        expect(Number(r.headers.get('ratelimit-reset'))).toBe(1);
      }
      for (const r of limited) {
        expect(r.body).toMatchObject({ statusCode: 429, error: 'Too Many Requests', code: 'rate_limited' });
        expect(r.headers.get('ratelimit-remaining')).toBe('0');
        const retryAfter = Number(r.headers.get('retry-after'));
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(2);
        expect(r.body.retryAfterSeconds).toBe(retryAfter);
      }
    });

    it('lets the key through again once Retry-After has passed', async () => {
      const { key, statuses, refused } = await inOneWindow(500, async () => {
        const { key } = await service.issue({ ownerId: 'rl-owner', name: 'retry', policy: { rateLimits: [{ name: 'b', limit: 2, windowMs: 500 }] } });
        const statuses = [(await call(urls[0]!, '/p/ping', key)).status, (await call(urls[0]!, '/p/ping', key)).status];
        return { key, statuses, refused: await call(urls.at(-1)!, '/p/ping', key) };
      });
      expect(statuses).toEqual([200, 200]);
      expect(refused.status).toBe(429);
      // Retry-After is whole seconds; the sliding window frees a slot within it.
      await new Promise((resolve) => setTimeout(resolve, Number(refused.headers.get('retry-after')) * 1_000));
      expect((await call(urls.at(-1)!, '/p/ping', key)).status).toBe(200);
    });

    it('enforces every named limit: the tighter one refuses, and reports itself in the headers', async () => {
      const { first, third } = await inOneWindow(1_000, async () => {
        const { key } = await service.issue({
          ownerId: 'rl-owner',
          name: 'two limits',
          policy: { rateLimits: [{ name: 'minute', limit: 100, windowMs: 60_000 }, { name: 'second', limit: 2, windowMs: 1_000 }] },
        });
        const first = await call(urls[0]!, '/p/ping', key);
        await call(urls[0]!, '/p/ping', key);
        return { first, third: await call(urls[0]!, '/p/ping', key) };
      });
      expect(first.headers.get('ratelimit-limit')).toBe('2');
      expect(first.headers.get('ratelimit-remaining')).toBe('1');
      expect(third.status).toBe(429);
      expect(third.headers.get('ratelimit-limit')).toBe('2');
    });

    it("keeps the RateLimit headers on a handler's error: the request was counted", async () => {
      const { key } = await service.issue({ ownerId: 'rl-owner', name: 'failing', policy: { rateLimits: [{ name: 'b', limit: 3, windowMs: 60_000 }] } });
      const failed = await call(urls[0]!, '/p/failing', key);
      expect(failed.status).toBe(400);
      expect(failed.body).toMatchObject({ statusCode: 400, message: 'the handler refused' });
      expect(failed.headers.get('ratelimit-limit')).toBe('3');
      expect(failed.headers.get('ratelimit-remaining')).toBe('2');
      const next = await call(urls.at(-1)!, '/p/ping', key);
      expect(next.headers.get('ratelimit-remaining')).toBe('1');
    });

    it('sets no RateLimit headers for a key without limits, and never limits it', async () => {
      const { key } = await service.issue({ ownerId: 'rl-owner', name: 'unlimited' });
      const responses = await Promise.all(Array.from({ length: 30 }, () => call(urls[0]!, '/p/ping', key)));
      expect(responses.every((r) => r.status === 200)).toBe(true);
      expect(responses.some((r) => r.headers.has('ratelimit-limit'))).toBe(false);
    });

    it('counts nothing for a request refused before the limits (scope), and nothing for a refused one', async () => {
      const { key } = await service.issue({ ownerId: 'rl-owner', name: 'scope', policy: { rateLimits: [{ name: 'b', limit: 2, windowMs: 60_000 }] } });
      for (let i = 0; i < 5; i++) expect((await call(urls[0]!, '/p/scoped', key)).status).toBe(403);
      expect((await call(urls[0]!, '/p/ping', key)).headers.get('ratelimit-remaining')).toBe('1');
      expect((await call(urls[0]!, '/p/ping', key)).headers.get('ratelimit-remaining')).toBe('0');
      for (let i = 0; i < 3; i++) expect((await call(urls[0]!, '/p/ping', key)).status).toBe(429);
    });
  });
});

describe.each(ADAPTERS)('rate limits with the guard registered twice over %s', (adapter) => {
  let app: INestApplication;
  let url: string;
  let service: ApiKeyService;

  beforeAll(async () => {
    // Global APP_GUARD plus @UseGuards(ApiKeyGuard) on the controller: the guard runs twice per request.
    ({ app, url } = await bootPolicyApp(adapter, { prefix: 'rl_' }, {
      controllers: [PolicyController],
      providers: [{ provide: APP_GUARD, useClass: ApiKeyGuard }],
    }));
    service = app.get(ApiKeyService);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('counts each request exactly once', async () => {
    const { key } = await service.issue({ ownerId: 'twice', name: 'twice', policy: { rateLimits: [{ name: 'm', limit: 4, windowMs: 60_000 }] } });
    const remaining: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await call(url, '/p/ping', key);
      expect(res.status).toBe(200);
      remaining.push(res.headers.get('ratelimit-remaining')!);
    }
    expect(remaining).toEqual(['3', '2', '1', '0']);
    expect((await call(url, '/p/ping', key)).status).toBe(429);
  });
});

describe.each(ADAPTERS)('a rate limiter that cannot answer, over %s', (adapter) => {
  let app: INestApplication;
  let url: string;
  let service: ApiKeyService;
  let client: Awaited<ReturnType<typeof connectRedis>>;
  let proxy: RedisProxy;
  let limiter: RateLimiter;
  let logs: CapturingLogger;

  beforeAll(async () => {
    // A real client, connected, whose Redis then goes away: with the offline queue off,
    // every command fails at once, as it does during an outage.
    proxy = await startRedisProxy();
    client = await connectRedis({ url: proxy.url, disableOfflineQueue: true });
    limiter = new RedisRateLimiter(client);
    await proxy.stop();
    ({ app, url } = await bootPolicyApp(adapter, { prefix: 'rl_', backend: new MemoryBackend(), rateLimiter: limiter }));
    // The outage is logged as an error, on purpose here: kept and asserted, not printed.
    logs = new CapturingLogger();
    app.useLogger(logs);
    service = app.get(ApiKeyService);
  });
  afterAll(async () => {
    await app?.close();
    client?.destroy();
  });

  it('answers 503 to a key with limits (never lets it past them) and serves keys without limits', async () => {
    const limited = await service.issue({ ownerId: 'down', name: 'limited', policy: FIVE_PER_SECOND });
    const free = await service.issue({ ownerId: 'down', name: 'free' });
    const res = await call(url, '/p/ping', limited.key);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('backend_unavailable');
    expect(res.headers.get('retry-after')).toBe('1');
    expect((await call(url, '/p/ping', free.key)).status).toBe(200);
    expect(logs.lines.filter((line) => line.startsWith('[error]'))).toEqual([
      expect.stringMatching(/^\[error\] The rate limiter is unavailable; answering 503 to keys with limits/),
    ]);
  });
});
