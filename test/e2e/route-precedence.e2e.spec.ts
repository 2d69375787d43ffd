import { Controller, Get, UseGuards, type INestApplication, type Provider } from '@nestjs/common';
import { APP_GUARD, Reflector } from '@nestjs/core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiAuthModule, ApiKeyGuard, ApiKeyOwner, ApiKeyService, Public, RequireAnyScope, RequireScopes } from 'nestjs-api-auth';
import { findApiKeyRoutes } from '../../lib/swagger/guarded-routes.js';
import { ADAPTERS, bootApp } from '../fixtures/app.js';

/** A `@Public()` controller whose methods opt back into the guard. */
@Controller('open-class')
@UseGuards(ApiKeyGuard)
@Public()
class PublicController {
  @Get('free')
  free(@ApiKeyOwner() owner: string | undefined) {
    return { owner: owner ?? null };
  }

  @Get('scoped')
  @RequireScopes('reports:read')
  scoped(@ApiKeyOwner() owner: string) {
    return { owner };
  }

  @Get('any')
  @RequireAnyScope('reports:read', 'reports:write')
  any(@ApiKeyOwner() owner: string) {
    return { owner };
  }
}

/** A controller that requires a scope, with methods opened or contradicting themselves. */
@Controller('scoped-class')
@UseGuards(ApiKeyGuard)
@RequireScopes('admin')
class ScopedController {
  @Get('open')
  @Public()
  open(@ApiKeyOwner() owner: string | undefined) {
    return { owner: owner ?? null };
  }

  @Get('closed')
  closed(@ApiKeyOwner() owner: string) {
    return { owner };
  }

  @Get('both')
  @Public()
  @RequireScopes('reports:read')
  both(@ApiKeyOwner() owner: string) {
    return { owner };
  }
}

/** Both on one class: fails closed. */
@Controller('contradiction')
@UseGuards(ApiKeyGuard)
@Public()
@RequireScopes('reports:read')
class ContradictionController {
  @Get()
  get(@ApiKeyOwner() owner: string) {
    return { owner };
  }
}

const CONTROLLERS = [PublicController, ScopedController, ContradictionController];
const GUARDS: Array<[string, Provider[]]> = [
  ['per controller', []],
  ['also global (APP_GUARD)', [{ provide: APP_GUARD, useClass: ApiKeyGuard }]],
];

describe.each(ADAPTERS)('the nearest metadata wins, over %s', (adapter) => {
  describe.each(GUARDS)('with the guard %s', (_label, providers) => {
    let app: INestApplication;
    let reader: string;
    let admin: string;
    let plain: string;
    const get = (path: string, key?: string) => {
      const req = request(app.getHttpServer()).get(path);
      return key ? req.set('X-API-Key', key) : req;
    };

    beforeAll(async () => {
      app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'np_' })], { controllers: CONTROLLERS, providers });
      const service = app.get(ApiKeyService);
      reader = (await service.issue({ ownerId: 'reader', name: 'r', scopes: ['reports:read'] })).key;
      admin = (await service.issue({ ownerId: 'admin', name: 'a', scopes: ['admin'] })).key;
      plain = (await service.issue({ ownerId: 'plain', name: 'p' })).key;
    });
    afterAll(() => app?.close());

    it('@RequireScopes() on a method guards it inside a @Public() controller', async () => {
      expect((await get('/open-class/scoped')).body).toMatchObject({ statusCode: 401, code: 'missing_api_key' });
      expect((await get('/open-class/scoped', plain)).body).toMatchObject({ statusCode: 403, code: 'insufficient_scope' });
      expect((await get('/open-class/scoped', reader)).body).toEqual({ owner: 'reader' });
      expect((await get('/open-class/any')).status).toBe(401);
      expect((await get('/open-class/any', plain)).status).toBe(403);
      expect((await get('/open-class/any', reader)).body).toEqual({ owner: 'reader' });
    });

    it('the other methods of the @Public() controller stay open, and see no key even when one is sent', async () => {
      expect((await get('/open-class/free')).body).toEqual({ owner: null });
      expect((await get('/open-class/free', reader)).body).toEqual({ owner: null });
    });

    it('@Public() on a method opens it inside a controller that requires a scope', async () => {
      expect((await get('/scoped-class/open')).body).toEqual({ owner: null });
      expect((await get('/scoped-class/closed')).status).toBe(401);
      expect((await get('/scoped-class/closed', reader)).status).toBe(403);
      expect((await get('/scoped-class/closed', admin)).body).toEqual({ owner: 'admin' });
    });

    it('on one level a requirement beats @Public(): a contradiction fails closed', async () => {
      expect((await get('/scoped-class/both')).status).toBe(401);
      expect((await get('/scoped-class/both', admin)).body).toMatchObject({ statusCode: 403, requiredScopes: ['reports:read'] });
      expect((await get('/scoped-class/both', reader)).body).toEqual({ owner: 'reader' });
      expect((await get('/contradiction')).status).toBe(401);
      expect((await get('/contradiction', reader)).body).toEqual({ owner: 'reader' });
    });

    it('the OpenAPI route list agrees with the guard', () => {
      const guarded = Object.fromEntries(
        findApiKeyRoutes(app)
          .filter((r) => CONTROLLERS.includes(r.controller as never))
          .map((r) => [`${r.controller.name}.${r.methodName}`, r.guarded]),
      );
      expect(guarded).toEqual({
        'PublicController.free': false,
        'PublicController.scoped': true,
        'PublicController.any': true,
        'ScopedController.open': false,
        'ScopedController.closed': true,
        'ScopedController.both': true,
        'ContradictionController.get': true,
      });
    });

    it('reads route metadata once per handler: no reflector call on later requests', async () => {
      for (const path of ['/open-class/free', '/open-class/scoped', '/scoped-class/closed']) await get(path, reader);
      const reads = [vi.spyOn(Reflector.prototype, 'get'), vi.spyOn(Reflector.prototype, 'getAllAndOverride')];
      try {
        for (let i = 0; i < 5; i++) {
          expect((await get('/open-class/free', reader)).status).toBe(200);
          expect((await get('/open-class/scoped', reader)).status).toBe(200);
          expect((await get('/scoped-class/closed', admin)).status).toBe(200);
        }
        expect(reads.map((spy) => spy.mock.calls.length)).toEqual([0, 0]);
      } finally {
        reads.forEach((spy) => spy.mockRestore());
      }
    });
  });
});
