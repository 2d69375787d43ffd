import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, type ApiKey } from 'nestjs-api-auth';
import { ADAPTERS } from '../fixtures/app.js';
import { RACE_TRIALS, turns } from '../fixtures/counter-release.suite.js';
import { bootPolicyApp, call, makeSetup, SETUP_NAMES, type Setup } from '../fixtures/rate-limit.setups.js';

const SELF = 'api-keys:self';
const LIMIT = 6;

/** A request with the key in `X-API-Key`, answering the status and the JSON body. */
async function send(url: string, method: string, path: string, key: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/*
 * Issue 17, item 4, as an attacker runs it: a self-service key with a quota sends
 * `DELETE /api-keys/<itself>` and, a few event-loop turns before or after, `POST
 * /api-keys` (the minted key counts against the caller's counters). On Redis the two
 * requests go to two instances sharing the store and the counters.
 */
describe.each(ADAPTERS)('delete racing a self-service issue over %s', (adapter) => {
  describe.each(SETUP_NAMES)('on the %s setup', (setupName) => {
    let setup: Setup;
    const apps: INestApplication[] = [];
    const urls: string[] = [];
    let service: ApiKeyService;
    /** Creates and deletes the store completed, in order. */
    const log: string[] = [];
    /** Event-loop turns each create waits before it writes: a store as slow as PostgreSQL, varied per trial. */
    let createDelay = 0;

    beforeAll(async () => {
      setup = await makeSetup(setupName, `quota-race-${adapter}`);
      for (let i = 0; i < (setup.shared ? 2 : 1); i++) {
        const storage = setup.create();
        const { backend } = storage;
        const create = backend.create.bind(backend);
        const remove = backend.delete.bind(backend);
        backend.create = async (apiKey: ApiKey) => {
          await turns(createDelay);
          const created = await create(apiKey);
          log.push(`create:${apiKey.id}`);
          return created;
        };
        backend.delete = async (id: string) => {
          await remove(id);
          log.push(`delete:${id}`);
        };
        const { app, url } = await bootPolicyApp(adapter, ApiAuthModule.forRoot({ prefix: 'qr_', ...storage, routes: { path: 'api-keys' } }));
        apps.push(app);
        urls.push(url);
      }
      service = apps[0]!.get(ApiKeyService);
    });
    afterAll(async () => {
      for (const app of apps) await app.close();
      await setup?.cleanup();
    });

    it(`no minted key starts with a fresh quota in ${RACE_TRIALS} trials`, async () => {
      const tally = { minted: 0, refused: 0, createdAfterDelete: 0, fresh: 0 };
      for (let t = 0; t < RACE_TRIALS; t++) {
        const quota = t % 2 === 0 ? { limit: LIMIT } : { limit: LIMIT, refillIntervalMs: 86_400_000 };
        const { key, apiKey } = await service.issue({
          ownerId: `qr-${adapter}-${t}`,
          name: 'self',
          scopes: [SELF, 'reports:read'],
          policy: { quota },
        });
        expect((await call(urls[0]!, '/p/ping', key)).status).toBe(200);

        const lead = (t % 17) - 8;
        createDelay = t % 7;
        const deleting = turns(Math.max(0, -lead)).then(() => send(urls[0]!, 'DELETE', `/api-keys/${apiKey.id}`, key));
        const minting = turns(Math.max(0, lead)).then(() =>
          send(urls.at(-1)!, 'POST', '/api-keys', key, { name: 'child', scopes: ['reports:read'] }),
        );
        const [deleted, minted] = await Promise.all([deleting, minting]);
        expect(deleted.status).toBe(204);
        if (minted.status !== 201) {
          // The delete won: the caller's key is gone before its POST was checked.
          expect(minted).toMatchObject({ status: 401, body: { code: 'invalid_api_key' } });
          tally.refused++;
          continue;
        }
        tally.minted++;
        if (log.indexOf(`create:${minted.body.apiKey.id}`) > log.indexOf(`delete:${apiKey.id}`)) tally.createdAfterDelete++;
        expect((await service.get(minted.body.apiKey.id))?.policy).toEqual({ quota, counterKey: apiKey.id });
        // The caller spent one ping, its DELETE and its POST: what is left is the minted key's.
        let served = 0;
        for (let i = 0; i <= LIMIT; i++) {
          const res = await call(urls[i % urls.length]!, '/p/ping', minted.body.key);
          if (res.status !== 200) {
            expect(res.body.code).toBe('quota_exhausted');
            break;
          }
          served++;
        }
        if (served !== LIMIT - 3) tally.fresh++;
      }
      console.info(`[race] HTTP ${adapter}/${setupName}, DELETE vs POST: ${JSON.stringify(tally)} of ${RACE_TRIALS} trials`);
      expect(tally.fresh).toBe(0);
      expect(tally.minted).toBeGreaterThan(0);
      expect(tally.createdAfterDelete).toBeGreaterThan(0);
    });
  });
});
