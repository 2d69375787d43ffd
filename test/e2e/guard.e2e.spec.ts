import { createHash } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, GuardedController, bootApp } from '../fixtures/app.js';
import { ClassScopedController } from '../fixtures/scoped.controllers.js';

const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');
const CHALLENGE = 'ApiKey realm="api"';

describe.each(ADAPTERS)('ApiKeyGuard over %s', (adapter) => {
  let app: INestApplication;
  let service: ApiKeyService;
  let http: ReturnType<typeof request>;
  /** Holds things:read only, plus a scope whose name must never appear in a response. */
  let reader: string;
  let readerId: string;
  let writer: string;
  let anyB: string;
  let admin: string;
  let reports: string;

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'test_' })], {
      controllers: [GuardedController, ClassScopedController],
    });
    service = app.get(ApiKeyService);
    http = request(app.getHttpServer());
    const issued = await service.issue({ ownerId: 'user-1', name: 'reader', scopes: ['things:read', 'private-scope-7f3a'] });
    reader = issued.key;
    readerId = issued.apiKey.id;
    writer = (await service.issue({ ownerId: 'user-2', name: 'writer', scopes: ['things:read', 'things:write'] })).key;
    anyB = (await service.issue({ ownerId: 'user-3', name: 'b only', scopes: ['b'] })).key;
    admin = (await service.issue({ ownerId: 'admin-1', name: 'admin', scopes: ['admin'] })).key;
    reports = (await service.issue({ ownerId: 'analyst-1', name: 'reports', scopes: ['reports:read'] })).key;
  });
  afterAll(() => app.close());

  describe('200 and what the handler sees', () => {
    it('lets a valid key through and gives the handler its owner and record, never its hash', async () => {
      const res = await http.get('/t/me').set('X-API-Key', reader).expect(200);
      expect(res.body.ownerId).toBe('user-1');
      expect(res.body.apiKey).toMatchObject({
        id: readerId,
        ownerId: 'user-1',
        name: 'reader',
        scopes: ['things:read', 'private-scope-7f3a'],
        revokedAt: null,
      });
      expect(res.body.apiKey).not.toHaveProperty('keyHash');
      expect(res.text).not.toContain(sha256(reader));
      expect(res.text).not.toContain(reader);
    });

    it('injects one field with @CurrentApiKey(field)', async () => {
      const res = await http.get('/t/scope-of').set('x-api-key', writer).expect(200);
      expect(res.body).toEqual({ scopes: ['things:read', 'things:write'] });
    });

    it('matches the header name case-insensitively and ignores surrounding whitespace', async () => {
      await http.get('/t/me').set('X-API-KEY', reader).expect(200);
      await http.get('/t/me').set('x-api-key', `  ${reader} `).expect(200);
    });

    it('leaves @Public routes open, with no owner', async () => {
      const res = await http.get('/t/open').expect(200);
      expect(res.body).toEqual({ open: true });
      expect((await http.get('/scoped/open').expect(200)).body).toEqual({ open: true, ownerId: null });
    });
  });

  describe('401', () => {
    it('missing_api_key without a key, with a bare challenge (no error attribute)', async () => {
      for (const req of [http.get('/t/me'), http.get('/t/me').set('X-API-Key', ''), http.get('/t/me').set('X-API-Key', '   ')]) {
        const res = await req.expect(401);
        expect(res.body).toEqual({
          statusCode: 401,
          error: 'Unauthorized',
          code: 'missing_api_key',
          message: 'An API key is required.',
        });
        expect(res.headers['www-authenticate']).toBe(CHALLENGE);
      }
    });

    it('invalid_api_key for malformed, foreign-prefix and unknown keys', async () => {
      const unknown = service.format.generate();
      for (const value of ['garbage', reader.slice(0, -1), `live_${reader.slice(5)}`, unknown, reader + reader]) {
        const res = await http.get('/t/me').set('X-API-Key', value).expect(401);
        expect(res.body).toMatchObject({ statusCode: 401, code: 'invalid_api_key', message: 'The API key is not valid.' });
        expect(res.headers['www-authenticate']).toBe(`${CHALLENGE}, error="invalid_api_key"`);
      }
    });

    it('expired_api_key once expiresAt has passed', async () => {
      // On a fake Date: the expiry is reached by a step of the clock, never by a slow request.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
      let res: request.Response;
      try {
        const expiresAt = new Date(Date.now() + 300);
        const { key } = await service.issue({ ownerId: 'o', name: 'short', expiresAt });
        await http.get('/t/me').set('X-API-Key', key).expect(200);
        vi.setSystemTime(expiresAt);
        res = await http.get('/t/me').set('X-API-Key', key).expect(401);
      } finally {
        vi.useRealTimers();
      }
      expect(res.body).toMatchObject({ code: 'expired_api_key', message: 'The API key has expired.' });
      expect(res.headers['www-authenticate']).toBe(`${CHALLENGE}, error="expired_api_key"`);
    });

    it('revoked_api_key after revoke', async () => {
      const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'to revoke' });
      await http.get('/t/me').set('X-API-Key', key).expect(200);
      await service.revoke(apiKey.id);
      const res = await http.get('/t/me').set('X-API-Key', key).expect(401);
      expect(res.body).toMatchObject({ code: 'revoked_api_key', message: 'The API key has been revoked.' });
      expect(res.headers['www-authenticate']).toBe(`${CHALLENGE}, error="revoked_api_key"`);
    });
  });

  describe('403 and scopes', () => {
    it('insufficient_scope names the required scopes, never the key\'s own', async () => {
      const res = await http.get('/t/write').set('X-API-Key', reader).expect(403);
      expect(res.body).toEqual({
        statusCode: 403,
        error: 'Forbidden',
        code: 'insufficient_scope',
        message: 'The API key lacks a scope this operation requires.',
        requiredScopes: ['things:read', 'things:write'],
        scopeMatch: 'all',
      });
      expect(res.headers['www-authenticate']).toBe(
        `${CHALLENGE}, error="insufficient_scope", scope="things:read things:write"`,
      );
      expect(res.text).not.toContain('private-scope-7f3a');
      expect(res.headers['www-authenticate']).not.toContain('private-scope-7f3a');
    });

    it('@RequireScopes needs all of them', async () => {
      await http.get('/t/write').set('X-API-Key', writer).expect(200);
      await http.get('/t/write').set('X-API-Key', anyB).expect(403);
    });

    it('@RequireAnyScope needs one of them', async () => {
      await http.get('/t/any').set('X-API-Key', anyB).expect(200);
      const res = await http.get('/t/any').set('X-API-Key', writer).expect(403);
      expect(res.body).toMatchObject({ code: 'insufficient_scope', requiredScopes: ['a', 'b'], scopeMatch: 'any' });
    });

    it('a class-level requirement applies to every method without its own', async () => {
      expect((await http.get('/scoped/inherits').set('X-API-Key', admin).expect(200)).body).toEqual({ ownerId: 'admin-1' });
      const res = await http.get('/scoped/inherits').set('X-API-Key', reports).expect(403);
      expect(res.body.requiredScopes).toEqual(['admin']);
    });

    it('a method-level requirement replaces the class-level one (method wins)', async () => {
      await http.get('/scoped/overrides').set('X-API-Key', reports).expect(200);
      const res = await http.get('/scoped/overrides').set('X-API-Key', admin).expect(403);
      expect(res.body).toMatchObject({ requiredScopes: ['reports:read'], scopeMatch: 'all' });
      await http.get('/scoped/overrides-any').set('X-API-Key', reports).expect(200);
      expect((await http.get('/scoped/overrides-any').set('X-API-Key', admin).expect(403)).body.scopeMatch).toBe('any');
    });

    it('checks the key before the scopes: an unknown key on a scoped route is 401, not 403', async () => {
      const res = await http.get('/scoped/inherits').set('X-API-Key', service.format.generate()).expect(401);
      expect(res.body.code).toBe('invalid_api_key');
    });
  });

  describe('Authorization: Bearer', () => {
    it('accepts the key as a bearer token, with the scheme in any case', async () => {
      for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
        const res = await http.get('/t/me').set('Authorization', `${scheme} ${reader}`).expect(200);
        expect(res.body.ownerId).toBe('user-1');
      }
    });

    it('ignores other schemes (so a Basic header alone is a missing key)', async () => {
      const res = await http.get('/t/me').set('Authorization', `Basic ${Buffer.from('u:p').toString('base64')}`).expect(401);
      expect(res.body.code).toBe('missing_api_key');
      await http.get('/t/me').set('Authorization', `Bearerx ${reader}`).expect(401);
    });

    it('refuses an empty bearer token as invalid_api_key', async () => {
      const res = await http.get('/t/me').set('Authorization', 'Bearer ').expect(401);
      expect(res.body.code).toBe('invalid_api_key');
    });

    it('accepts the same key in both X-API-Key and Bearer, refuses two different ones', async () => {
      await http.get('/t/me').set('X-API-Key', reader).set('Authorization', `Bearer ${reader}`).expect(200);
      // Both valid keys of different owners: picking one would be a guess.
      const res = await http.get('/t/me').set('X-API-Key', reader).set('Authorization', `Bearer ${writer}`).expect(401);
      expect(res.body.code).toBe('invalid_api_key');
      // A valid bearer cannot rescue a garbage header, nor the other way round.
      await http.get('/t/me').set('X-API-Key', 'garbage').set('Authorization', `Bearer ${reader}`).expect(401);
      await http.get('/t/me').set('X-API-Key', reader).set('Authorization', 'Bearer garbage').expect(401);
    });
  });

  describe('query string', () => {
    it('is off by default: a key in the URL is ignored', async () => {
      const res = await http.get(`/t/me?api_key=${reader}`).expect(401);
      expect(res.body.code).toBe('missing_api_key');
      await http.get(`/t/me?apiKey=${reader}&key=${reader}&x-api-key=${reader}`).expect(401);
    });
  });
});

describe.each(ADAPTERS)('ApiKeyGuard with custom header, realm, query parameter and no bearer, over %s', (adapter) => {
  let app: INestApplication;
  let http: ReturnType<typeof request>;
  let key: string;

  beforeAll(async () => {
    app = await bootApp(adapter, [
      ApiAuthModule.forRoot({ prefix: 'live_', header: 'X-Payments-Key', realm: 'payments', queryParam: 'api_key', bearer: false }),
    ]);
    http = request(app.getHttpServer());
    ({ key } = await app.get(ApiKeyService).issue({ ownerId: 'merchant-9', name: 'k' }));
  });
  afterAll(() => app.close());

  it('reads the configured header and names the configured realm', async () => {
    expect((await http.get('/t/me').set('X-Payments-Key', key).expect(200)).body.ownerId).toBe('merchant-9');
    const res = await http.get('/t/me').expect(401);
    expect(res.headers['www-authenticate']).toBe('ApiKey realm="payments"');
  });

  it('no longer reads X-API-Key or Bearer', async () => {
    expect((await http.get('/t/me').set('X-API-Key', key).expect(401)).body.code).toBe('missing_api_key');
    expect((await http.get('/t/me').set('Authorization', `Bearer ${key}`).expect(401)).body.code).toBe('missing_api_key');
  });

  it('reads the query parameter when configured, and it must agree with the header', async () => {
    expect((await http.get(`/t/me?api_key=${key}`).expect(200)).body.ownerId).toBe('merchant-9');
    await http.get(`/t/me?api_key=${key}`).set('X-Payments-Key', key).expect(200);
    const other = (await app.get(ApiKeyService).issue({ ownerId: 'merchant-10', name: 'k2' })).key;
    expect((await http.get(`/t/me?api_key=${other}`).set('X-Payments-Key', key).expect(401)).body.code).toBe(
      'invalid_api_key',
    );
    expect((await http.get(`/t/me?api_key=${key}&api_key=${key}`).expect(401)).body.code).toBe('invalid_api_key');
    expect((await http.get('/t/me?api_key=').expect(401)).body.code).toBe('missing_api_key');
  });
});
