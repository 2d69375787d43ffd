import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService, type ApiKeyBackend } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { ADAPTERS } from '../fixtures/app.js';
import { bootPolicyApp, call, makeSetup, SETUP_NAMES, type Setup } from '../fixtures/rate-limit.setups.js';

/** The backend, with a count of hash lookups: a key refused offline must not add one. */
function countingLookups(backend: ApiKeyBackend): { backend: ApiKeyBackend; lookups: () => number } {
  let lookups = 0;
  const counted = Object.create(backend) as ApiKeyBackend;
  counted.getByHash = (hash) => {
    lookups++;
    return backend.getByHash(hash);
  };
  return { backend: counted, lookups: () => lookups };
}

describe.each(ADAPTERS)('environments over %s', (adapter) => {
  describe.each(SETUP_NAMES)('on the %s setup', (setupName) => {
    let setup: Setup;
    let live: { app: INestApplication; url: string };
    let staging: { app: INestApplication; url: string };
    let plain: { app: INestApplication; url: string };
    let stagingLookups: () => number;
    let liveService: ApiKeyService;
    let stagingService: ApiKeyService;
    let sharedBackend: ApiKeyBackend;

    beforeAll(async () => {
      setup = await makeSetup(setupName, `environment-${adapter}`);
      // Production serves live and test keys; staging only test keys. Both see the same store.
      const liveStorage = setup.create();
      sharedBackend = liveStorage.backend;
      live = await bootPolicyApp(adapter, { prefix: 'sk_', environment: 'live', acceptEnvironments: ['live', 'test'], ...liveStorage });
      const stagingStorage = setup.create();
      const counted = countingLookups(stagingStorage.backend);
      stagingLookups = counted.lookups;
      staging = await bootPolicyApp(adapter, { prefix: 'sk_', environment: 'test', ...stagingStorage, backend: counted.backend });
      plain = await bootPolicyApp(adapter, { prefix: 'sk_', ...setup.create() });
      liveService = live.app.get(ApiKeyService);
      stagingService = staging.app.get(ApiKeyService);
    });
    afterAll(async () => {
      for (const deployment of [live, staging, plain]) await deployment?.app.close();
      await setup?.cleanup();
    });

    it('encodes the environment in the prefix and stores it on the record', async () => {
      const liveKey = await liveService.issue({ ownerId: 'env', name: 'live' });
      const testKey = await liveService.issue({ ownerId: 'env', name: 'test', environment: 'test' });
      expect(liveKey.key.startsWith('sk_live_')).toBe(true);
      expect(liveKey.apiKey).toMatchObject({ environment: 'live', hint: expect.stringMatching(/^sk_live_…/) });
      expect(testKey.key.startsWith('sk_test_')).toBe(true);
      expect((await liveService.get(testKey.apiKey.id))?.environment).toBe('test');
      expect((await call(live.url, '/p/ping', liveKey.key)).body).toEqual({ id: liveKey.apiKey.id, environment: 'live' });
      expect((await call(live.url, '/p/ping', testKey.key)).body.environment).toBe('test');
    });

    it("never verifies a key of another environment in a deployment that does not accept it, and never looks it up", async () => {
      const liveKey = await liveService.issue({ ownerId: 'env', name: 'live only' });
      const before = stagingLookups();
      const res = await call(staging.url, '/p/ping', liveKey.key);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('invalid_api_key');
      expect(stagingLookups()).toBe(before);
      expect(await stagingService.verify(liveKey.key)).toBeNull();
      // Nor in a deployment without environments (prefix "sk_" alone).
      expect((await call(plain.url, '/p/ping', liveKey.key)).status).toBe(401);

      const testKey = await stagingService.issue({ ownerId: 'env', name: 'staging' });
      expect(testKey.key.startsWith('sk_test_')).toBe(true);
      expect((await call(staging.url, '/p/ping', testKey.key)).status).toBe(200);
      expect(stagingLookups()).toBe(before + 1);
    });

    it('@RequireEnvironment restricts a route: 403 environment_not_allowed for a test key', async () => {
      const liveKey = await liveService.issue({ ownerId: 'env', name: 'live' });
      const testKey = await liveService.issue({ ownerId: 'env', name: 'test', environment: 'test' });
      expect((await call(live.url, '/p/live', liveKey.key)).status).toBe(200);
      const refused = await call(live.url, '/p/live', testKey.key);
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ code: 'environment_not_allowed', requiredEnvironments: ['live'] });
      expect(refused.headers.has('www-authenticate')).toBe(false);
      // A key without an environment is not a live key either.
      const plainKey = await plain.app.get(ApiKeyService).issue({ ownerId: 'env', name: 'plain' });
      expect(plainKey.apiKey.environment).toBeNull();
      expect((await call(plain.url, '/p/live', plainKey.key)).body.code).toBe('environment_not_allowed');
    });

    it('refuses a record whose stored environment is not the one its prefix names', async () => {
      const testKey = await liveService.issue({ ownerId: 'env', name: 'tampered', environment: 'test' });
      const record = (await sharedBackend.getById(testKey.apiKey.id))!;
      // The environment is fixed at create: tamper with the store directly.
      await sharedBackend.delete(record.id);
      await sharedBackend.create({ ...record, environment: 'live' });
      expect((await call(live.url, '/p/ping', testKey.key)).body.code).toBe('invalid_api_key');
      expect((await call(live.url, '/p/live', testKey.key)).body.code).toBe('invalid_api_key');
    });

    it('rotates a key within its environment', async () => {
      const testKey = await liveService.issue({ ownerId: 'env', name: 'rotate me', environment: 'test' });
      const rotated = await liveService.rotate(testKey.apiKey.id);
      expect(rotated.key.startsWith('sk_test_')).toBe(true);
      expect(rotated.apiKey.environment).toBe('test');
      expect((await call(staging.url, '/p/ping', rotated.key)).status).toBe(200);
    });

    it('refuses to issue in an environment the deployment does not accept', async () => {
      await expect(stagingService.issue({ ownerId: 'env', name: 'x', environment: 'live' })).rejects.toThrow(/environment/);
    });
  });
});

describe('environment options at start-up', () => {
  it('name the bad option', () => {
    expect(() => resolveApiAuthOptions({ environment: 'li-ve' })).toThrow(/"environment" must be 1-16 letters and digits/);
    expect(() => resolveApiAuthOptions({ acceptEnvironments: ['test'] })).toThrow(/"acceptEnvironments" needs the "environment"/);
    expect(() => resolveApiAuthOptions({ environment: 'live', acceptEnvironments: ['test'] })).toThrow(/must include/);
    expect(() => resolveApiAuthOptions({ prefix: 'a'.repeat(30), environment: 'live' })).toThrow(/"environment" must be 1-32/);
    expect(resolveApiAuthOptions({ environment: 'live', acceptEnvironments: ['test', 'live'] }).environments).toEqual(['live', 'test']);
  });
});
