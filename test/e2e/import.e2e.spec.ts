import { createHash } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS } from '../fixtures/app.js';
import { bootPolicyApp, call, makeSetup, SETUP_NAMES, type Setup } from '../fixtures/rate-limit.setups.js';

const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

describe.each(ADAPTERS)('imported keys through the guard over %s', (adapter) => {
  describe.each(SETUP_NAMES)('on the %s setup', (setupName) => {
    let setup: Setup;
    const apps: Array<{ app: INestApplication; url: string }> = [];
    let service: ApiKeyService;
    /** The instance that did not import: with Redis it sees the import through the shared store. */
    let other: string;

    beforeAll(async () => {
      setup = await makeSetup(setupName, `import-${adapter}`);
      for (let i = 0; i < 2; i++) apps.push(await bootPolicyApp(adapter, { prefix: 'im_', legacyKeyPrefixes: ['old_'], ...setup.create() }));
      service = apps[0]!.app.get(ApiKeyService);
      other = apps[1]!.url;
    });
    afterAll(async () => {
      for (const { app } of apps) await app.close();
      await setup?.cleanup();
    });

    it('serves an imported legacy key, one imported by hash, and one of the own format, with their policy', async () => {
      const legacy = 'old_Zx81hQ0pLm3Nv7Rt2Yc5';
      const byHash = 'old_Kk29dPw0sA7eUq4Fj6Hb';
      const own = service.format.generate();
      const a = await service.import({ key: legacy }, { ownerId: 'imp', name: 'legacy', policy: { rateLimits: [{ name: 'm', limit: 1, windowMs: 60_000 }] } });
      const b = await service.import({ keyHash: sha256(byHash), hint: 'old_…Fj6Hb' }, { ownerId: 'imp', name: 'hash' });
      const c = await service.import({ key: own }, { ownerId: 'imp', name: 'own' });
      // Served by the instance that did not import (both read one store: a shared MemoryBackend, or Redis).
      const target = other;
      expect((await call(target, '/p/ping', legacy)).body.id).toBe(a.id);
      expect((await call(target, '/p/ping', legacy)).body.code).toBe('rate_limited');
      expect((await call(target, '/p/ping', byHash)).body.id).toBe(b.id);
      expect((await call(target, '/p/ping', own)).body.id).toBe(c.id);
      // A legacy-shaped value that was never imported is a plain 401.
      expect((await call(target, '/p/ping', 'old_neverImported000000')).body.code).toBe('invalid_api_key');
    });
  });
});
