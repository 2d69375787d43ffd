import { Controller, Get, UseGuards, type INestApplication, type Provider } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiAuthModule,
  ApiKeyGuard,
  ApiKeyOwner,
  ApiKeyService,
  CurrentApiKey,
  OptionalApiKey,
  Public,
  RequireScopes,
  type ApiKeyView,
} from 'nestjs-api-auth';
import { ADAPTERS, bootApp, type Adapter } from '../fixtures/app.js';
import { STORE_SETUPS } from '../fixtures/store.setups.js';

/** `@OptionalApiKey()` in every position the precedence rules name. */
@Controller('opt')
@UseGuards(ApiKeyGuard)
@RequireScopes('things:read')
class OptionalRoutesController {
  /** Optional on the method: the class's requirement does not apply. */
  @Get('who')
  @OptionalApiKey()
  who(@ApiKeyOwner() ownerId: string | undefined, @CurrentApiKey() apiKey: ApiKeyView | undefined) {
    return { ownerId: ownerId ?? null, id: apiKey?.id ?? null };
  }

  /** Optional and a requirement on one level: the requirement wins, a key is required. */
  @Get('contradiction')
  @OptionalApiKey()
  @RequireScopes('things:write')
  contradiction() {
    return { ok: true };
  }

  /** The class's requirement, untouched. */
  @Get('required')
  required() {
    return { ok: true };
  }
}

/** Optional on a class opened by nothing else; @Public() on a method still opens it fully. */
@Controller('opt-class')
@UseGuards(ApiKeyGuard)
@OptionalApiKey()
class OptionalClassController {
  @Get('who')
  who(@ApiKeyOwner() ownerId: string | undefined) {
    return { ownerId: ownerId ?? null };
  }

  @Get('open')
  @Public()
  open(@ApiKeyOwner() ownerId: string | undefined) {
    return { ownerId: ownerId ?? null };
  }

  /** Optional and @Public() on one level: a sent key is still checked. */
  @Get('both')
  @Public()
  @OptionalApiKey()
  both(@ApiKeyOwner() ownerId: string | undefined) {
    return { ownerId: ownerId ?? null };
  }
}

/** With a global guard: no @UseGuards at all. */
@Controller('opt-global')
class OptionalGlobalController {
  @Get('who')
  @OptionalApiKey()
  who(@ApiKeyOwner() ownerId: string | undefined) {
    return { ownerId: ownerId ?? null };
  }

  @Get('private')
  private(@ApiKeyOwner() ownerId: string) {
    return { ownerId };
  }
}

const global: Provider = { provide: APP_GUARD, useClass: ApiKeyGuard };

/** One app per store and adapter, reused by every case; a second one with a global guard over the same store. */
describe.each(STORE_SETUPS)('@OptionalApiKey() on $name', (setup) => {
  describe.each(ADAPTERS)('over %s', (adapter: Adapter) => {
    let app: INestApplication;
    let globalApp: INestApplication;
    let service: ApiKeyService;
    let close: () => Promise<void>;
    let valid: { key: string; apiKey: ApiKeyView };
    let revoked: string;
    let expired: string;
    const http = () => request(app.getHttpServer());

    beforeAll(async () => {
      // One store for both apps: the same keys, checked by a per-controller and a global guard.
      const store = await setup.open(`optional-key-${adapter}`);
      close = store.close;
      const backend = store.backend;
      app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'opt_', backend, schemes: ['Bearer', 'Api-Key'] })], {
        controllers: [OptionalRoutesController, OptionalClassController],
      });
      service = app.get(ApiKeyService);
      valid = await service.issue({ ownerId: 'alice', name: 'v' });
      const r = await service.issue({ ownerId: 'alice', name: 'r' });
      await service.revoke(r.apiKey.id);
      revoked = r.key;
      // Expired in the past, written to the store before its first use: the service only accepts future expiries.
      const e = await service.issue({ ownerId: 'alice', name: 'e' });
      await backend.update(e.apiKey.id, { expiresAt: new Date(Date.now() - 60_000), updatedAt: new Date() });
      expired = e.key;
      globalApp = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'opt_', backend })], {
        controllers: [OptionalGlobalController],
        providers: [global],
      });
    });
    afterAll(async () => {
      await app?.close();
      await globalApp?.close();
      await close?.();
    });

    it('runs without a key, with the owner and the key undefined', async () => {
      expect((await http().get('/opt/who').expect(200)).body).toEqual({ ownerId: null, id: null });
      expect((await http().get('/opt-class/who').expect(200)).body).toEqual({ ownerId: null });
    });

    it('hands a valid key to the handler, even one without the class\'s scopes', async () => {
      const res = await http().get('/opt/who').set('X-API-Key', valid.key).expect(200);
      expect(res.body).toEqual({ ownerId: 'alice', id: valid.apiKey.id });
    });

    it('answers 401 to a key that is present but malformed, unknown, revoked or expired', async () => {
      for (const [key, code] of [
        ['garbage', 'invalid_api_key'],
        [valid.key.slice(0, -1) + (valid.key.endsWith('A') ? 'B' : 'A'), 'invalid_api_key'],
        [service.format.generate(), 'invalid_api_key'],
        [revoked, 'revoked_api_key'],
        [expired, 'expired_api_key'],
      ] as const) {
        const res = await http().get('/opt/who').set('X-API-Key', key).expect(401);
        expect(res.body.code).toBe(code);
        expect(res.headers['www-authenticate']).toContain(`error="${code}"`);
      }
      await http().get('/opt/who').set('Authorization', 'Bearer').expect(401);
    });

    it('requires a key where a requirement sits beside it, and leaves the class\'s other routes as they were', async () => {
      expect((await http().get('/opt/contradiction').expect(401)).body.code).toBe('missing_api_key');
      expect((await http().get('/opt/contradiction').set('X-API-Key', valid.key).expect(403)).body.code).toBe('insufficient_scope');
      expect((await http().get('/opt/required').expect(401)).body.code).toBe('missing_api_key');
    });

    it('lets @Public() on a method open an optional class, ignoring even a bad key; both on one level check a sent key', async () => {
      expect((await http().get('/opt-class/open').set('X-API-Key', 'garbage').expect(200)).body).toEqual({ ownerId: null });
      expect((await http().get('/opt-class/both').set('X-API-Key', valid.key).expect(200)).body).toEqual({ ownerId: 'alice' });
      await http().get('/opt-class/both').set('X-API-Key', 'garbage').expect(401);
      await http().get('/opt-class/both').expect(200);
    });

    it('charges a present key\'s quota, and refuses it at 429 once spent', async () => {
      const { key } = await service.issue({ ownerId: 'bob', name: 'q', policy: { quota: { limit: 1 } } });
      await http().get('/opt/who').set('X-API-Key', key).expect(200);
      expect((await http().get('/opt/who').set('X-API-Key', key).expect(429)).body.code).toBe('quota_exhausted');
      await http().get('/opt/who').expect(200);
    });

    it('works under a global guard', async () => {
      const g = () => request(globalApp.getHttpServer());
      expect((await g().get('/opt-global/who').expect(200)).body).toEqual({ ownerId: null });
      expect((await g().get('/opt-global/who').set('X-API-Key', valid.key).expect(200)).body).toEqual({ ownerId: 'alice' });
      await g().get('/opt-global/who').set('X-API-Key', 'garbage').expect(401);
      await g().get('/opt-global/private').expect(401);
    });

    it('reads the key from every configured Authorization scheme, case-insensitively', async () => {
      for (const value of [`Bearer ${valid.key}`, `Api-Key ${valid.key}`, `api-key ${valid.key}`, `API-KEY ${valid.key}`]) {
        expect((await http().get('/opt/who').set('Authorization', value).expect(200)).body.ownerId).toBe('alice');
      }
      // Another scheme carries no key: the optional route runs without one.
      expect((await http().get('/opt/who').set('Authorization', `Token ${valid.key}`).expect(200)).body.ownerId).toBeNull();
      expect((await http().get('/opt/required').set('Authorization', `Token ${valid.key}`).expect(401)).body.code).toBe('missing_api_key');
    });

    it('accepts only Bearer by default', async () => {
      const g = () => request(globalApp.getHttpServer());
      expect((await g().get('/opt-global/private').set('Authorization', `Api-Key ${valid.key}`).expect(401)).body.code).toBe('missing_api_key');
      await g().get('/opt-global/private').set('Authorization', `Bearer ${valid.key}`).expect(200);
      // Not a scheme of this app: an optional route runs as if no key were sent.
      expect((await g().get('/opt-global/who').set('Authorization', `Api-Key ${valid.key}`).expect(200)).body).toEqual({ ownerId: null });
    });
  });
});
