import { Controller, Get, Req, UseGuards, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyGuard, ApiKeyService, CurrentApiKey, Public, type ApiKeyView } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';

// `request.apiKey` is public API (API_KEY_REQUEST_PROPERTY): handlers, interceptors and
// throttler trackers read it. On Express the module declares it on the app's request
// prototype, so the guard's store gives no request an own property (a new hidden
// class per request cost about 9 µs in the benchmark); it must read the same anyway.

type Carrier = { apiKey?: ApiKeyView; raw?: object };

@Controller('rp')
@UseGuards(ApiKeyGuard)
class RequestPropertyController {
  @Get('me')
  me(@Req() req: Carrier, @CurrentApiKey() key: ApiKeyView) {
    // Fastify hands the handler its own request; Nest's guard sees the same object.
    return { viaProperty: req.apiKey?.id ?? null, viaDecorator: key.id, own: Object.prototype.hasOwnProperty.call(req, 'apiKey') };
  }

  @Public()
  @Get('open')
  open(@Req() req: Carrier) {
    return { viaProperty: req.apiKey ?? null };
  }

  @Public()
  @Get('set-by-app')
  setByApp(@Req() req: Carrier) {
    // An app may set it itself (a test double, its own auth); it reads back per request.
    req.apiKey = { id: 'set-by-the-app' } as ApiKeyView;
    return { viaProperty: req.apiKey.id };
  }
}

describe.each(ADAPTERS)('request.apiKey over %s', (adapter) => {
  let app: INestApplication;
  let http: ReturnType<typeof request>;
  const keys: Array<{ key: string; id: string }> = [];

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'rp_' })], { controllers: [RequestPropertyController] });
    http = request(app.getHttpServer());
    const service = app.get(ApiKeyService);
    for (let i = 0; i < 4; i++) {
      const { key, apiKey } = await service.issue({ ownerId: `owner-${i}`, name: `k${i}` });
      keys.push({ key, id: apiKey.id });
    }
  });
  afterAll(() => app.close());

  it('holds the verified key, the same one @CurrentApiKey() gives', async () => {
    const res = await http.get('/rp/me').set('x-api-key', keys[0]!.key).expect(200);
    expect(res.body.viaProperty).toBe(keys[0]!.id);
    expect(res.body.viaDecorator).toBe(keys[0]!.id);
    if (adapter === 'express') expect(res.body.own).toBe(false);
  });

  it('is per request: 40 concurrent requests with four keys each see their own', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const { key, id } = keys[i % 4]!;
        const res = await http.get('/rp/me').set('x-api-key', key).expect(200);
        return res.body.viaProperty === id && res.body.viaDecorator === id;
      }),
    );
    expect(results.every(Boolean)).toBe(true);
  });

  it('is empty on a @Public() route, even right after a guarded request', async () => {
    await http.get('/rp/me').set('x-api-key', keys[1]!.key).expect(200);
    expect((await http.get('/rp/open').set('x-api-key', keys[1]!.key).expect(200)).body).toEqual({ viaProperty: null });
  });

  it('takes a value the app sets itself, for that request only', async () => {
    expect((await http.get('/rp/set-by-app').expect(200)).body).toEqual({ viaProperty: 'set-by-the-app' });
    expect((await http.get('/rp/open').expect(200)).body).toEqual({ viaProperty: null });
  });
});
