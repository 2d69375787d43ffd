import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_AUTH_OPTIONS, ApiKeyService, type ResolvedApiAuthOptions } from 'nestjs-api-auth';
import { ADAPTERS } from '../fixtures/app.js';
import { bootSetupApps, call, makeSetup, SETUP_NAMES, type Setup } from '../fixtures/rate-limit.setups.js';

describe.each(ADAPTERS)('per-key quotas over %s', (adapter) => {
  describe.each(SETUP_NAMES)('on the %s setup', (setupName) => {
    let setup: Setup;
    const apps: INestApplication[] = [];
    let urls: string[];
    let service: ApiKeyService;

    /** The quota balance of a key as the first instance's limiter sees it, read without spending. */
    async function balance(counterKey: string, limit: number): Promise<number> {
      const { rateLimiter } = apps[0]!.get<ResolvedApiAuthOptions>(API_AUTH_OPTIONS);
      const decision = await rateLimiter.consume(counterKey, { rateLimits: [], quota: { limit }, cost: 0 });
      if (!decision.allowed || !decision.quota) throw new Error('a cost-free read must be allowed');
      return decision.quota.remaining;
    }

    beforeAll(async () => {
      setup = await makeSetup(setupName, `quota-${adapter}`);
      ({ urls, service } = await bootSetupApps(adapter, setup, 'qt_', apps));
    });
    afterAll(async () => {
      for (const app of apps) await app.close();
      await setup?.cleanup();
    });

    it(`never goes negative under 200 concurrent requests${setupName === 'redis' ? ' across two instances' : ''}: exactly the credits are served`, async () => {
      const { key, apiKey } = await service.issue({ ownerId: 'q-owner', name: 'credits', policy: { quota: { limit: 50 } } });
      const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => call(urls[i % urls.length]!, '/p/ping', key)));
      expect(responses.filter((r) => r.status === 200)).toHaveLength(50);
      const refused = responses.filter((r) => r.status === 429);
      expect(refused).toHaveLength(150);
      for (const r of refused) {
        expect(r.body).toMatchObject({ statusCode: 429, code: 'quota_exhausted' });
        // Credits that never refill: no time to come back at.
        expect(r.headers.has('retry-after')).toBe(false);
      }
      expect(await balance(apiKey.id, 50)).toBe(0);
    });

    it('charges @ApiKeyCost per route; a free route passes on an empty quota', async () => {
      const { key, apiKey } = await service.issue({ ownerId: 'q-owner', name: 'cost', policy: { quota: { limit: 12 } } });
      expect((await call(urls[0]!, '/p/expensive', key)).status).toBe(200);
      expect((await call(urls.at(-1)!, '/p/expensive', key)).status).toBe(200);
      expect((await call(urls[0]!, '/p/expensive', key)).body.code).toBe('quota_exhausted');
      expect(await balance(apiKey.id, 12)).toBe(2);
      expect((await call(urls[0]!, '/p/ping', key)).status).toBe(200);
      expect((await call(urls[0]!, '/p/ping', key)).status).toBe(200);
      expect((await call(urls[0]!, '/p/ping', key)).status).toBe(429);
      expect((await call(urls[0]!, '/p/free', key)).status).toBe(200);
    });

    it('tells when credits that refill come back, in Retry-After', async () => {
      const { key } = await service.issue({ ownerId: 'q-owner', name: 'refill', policy: { quota: { limit: 1, refillIntervalMs: 3_600_000 } } });
      expect((await call(urls[0]!, '/p/ping', key)).status).toBe(200);
      // The credits come back at the next full hour (of the limiter's clock, read while
      // the request ran): bracketed by the seconds left before and after it, however long it took.
      const secondsLeft = (at: number) => Math.ceil((3_600_000 - (at % 3_600_000)) / 1000);
      const before = Date.now();
      const refused = await call(urls[0]!, '/p/ping', key);
      const after = Date.now();
      expect(refused.status).toBe(429);
      const retryAfter = Number(refused.headers.get('retry-after'));
      const sameHour = Math.floor(before / 3_600_000) === Math.floor(after / 3_600_000);
      const inBracket = sameHour
        ? retryAfter >= secondsLeft(after) && retryAfter <= secondsLeft(before)
        : retryAfter >= secondsLeft(after) || retryAfter <= secondsLeft(before);
      expect(inBracket, `Retry-After ${retryAfter} between ${secondsLeft(before)} and ${secondsLeft(after)}`).toBe(true);
    });

    it('rotation keeps the spent credits: the replacement shares the old key\'s counters', async () => {
      const { key, apiKey } = await service.issue({ ownerId: 'q-owner', name: 'rotating', policy: { quota: { limit: 3 } } });
      expect((await call(urls[0]!, '/p/ping', key)).status).toBe(200);
      expect((await call(urls[0]!, '/p/ping', key)).status).toBe(200);
      const rotated = await service.rotate(apiKey.id, { gracePeriodMs: 60_000 });
      expect(rotated.apiKey.policy).toEqual({ quota: { limit: 3 }, counterKey: apiKey.id });
      expect((await call(urls.at(-1)!, '/p/ping', rotated.key)).status).toBe(200);
      expect((await call(urls.at(-1)!, '/p/ping', rotated.key)).body.code).toBe('quota_exhausted');
      expect((await call(urls[0]!, '/p/ping', key)).body.code).toBe('quota_exhausted');

      // Topping up through update keeps the shared counters too.
      const raised = await service.update(rotated.apiKey.id, { policy: { quota: { limit: 4 } } });
      expect(raised.policy).toEqual({ quota: { limit: 4 }, counterKey: apiKey.id });
      expect((await call(urls[0]!, '/p/ping', rotated.key)).status).toBe(200);
      expect((await call(urls[0]!, '/p/ping', rotated.key)).status).toBe(429);
    });
  });
});
