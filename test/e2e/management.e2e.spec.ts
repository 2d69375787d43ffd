import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiAuthModule,
  ApiKeyService,
  BackendUnavailableError,
  MemoryBackend,
  type ApiKey,
  type ApiKeyCursor,
} from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';

const ADMIN = 'api-keys:admin';
const SELF = 'api-keys:self';

/** A memory store whose management reads can be switched off, while key lookups keep working. */
class FlakyBackend extends MemoryBackend {
  down = false;
  override async getById(id: string): Promise<ApiKey | null> {
    if (this.down) throw new BackendUnavailableError('simulated outage');
    return super.getById(id);
  }
  override async *listByOwner(ownerId: string, options?: { after?: ApiKeyCursor; limit?: number }) {
    if (this.down) throw new BackendUnavailableError('simulated outage');
    yield* super.listByOwner(ownerId, options);
  }
}

describe.each(ADAPTERS)('key-management routes over %s', (adapter) => {
  let app: INestApplication;
  let service: ApiKeyService;
  let backend: FlakyBackend;
  let adminKey: string;
  let aliceSelfKey: string;
  let alicePlainKey: string;
  let alicePlainId: string;
  let aliceWriterId: string;
  let bobKeyId: string;
  /** Every response body the tests received, to prove plaintext keys appear once. */
  const transcript: string[] = [];

  const http = () => request(app.getHttpServer());
  const as = (key: string) => ({ 'X-API-Key': key });
  const record = <T extends { text: string }>(res: T): T => {
    transcript.push(res.text ?? '');
    return res;
  };

  beforeAll(async () => {
    backend = new FlakyBackend();
    app = await bootApp(
      adapter,
      [ApiAuthModule.forRoot({ prefix: 'mgmt_', backend, routes: { path: 'api-keys', maxGracePeriodMs: 3_600_000 } })],
      { controllers: [] },
    );
    service = app.get(ApiKeyService);
    adminKey = (await service.issue({ ownerId: 'ops', name: 'admin', scopes: [ADMIN] })).key;
    aliceSelfKey = (await service.issue({ ownerId: 'alice', name: 'self', scopes: [SELF, 'reports:read'] })).key;
    const plain = await service.issue({ ownerId: 'alice', name: 'plain', scopes: ['reports:read'] });
    alicePlainKey = plain.key;
    alicePlainId = plain.apiKey.id;
    aliceWriterId = (await service.issue({ ownerId: 'alice', name: 'writer', scopes: ['reports:read', 'reports:write'] }))
      .apiKey.id;
    bobKeyId = (await service.issue({ ownerId: 'bob', name: 'bob', scopes: ['reports:read'] })).apiKey.id;
  });
  afterAll(() => app?.close());

  const routes = (id: string) =>
    [
      ['post', '/api-keys'],
      ['get', '/api-keys'],
      ['get', `/api-keys/${id}`],
      ['patch', `/api-keys/${id}`],
      ['post', `/api-keys/${id}/revoke`],
      ['post', `/api-keys/${id}/rotate`],
      ['delete', `/api-keys/${id}`],
    ] as const;

  it('answers 401 on every route without a key', async () => {
    for (const [method, path] of routes(bobKeyId)) {
      const res = await http()[method](path).send({});
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.body.code).toBe('missing_api_key');
      expect(res.headers['www-authenticate']).toMatch(/^ApiKey realm=/);
    }
    expect(await service.get(bobKeyId)).not.toBeNull();
  });

  it('answers 403 insufficient_scope on every route to a key with none of the management scopes', async () => {
    for (const [method, path] of routes(alicePlainId)) {
      const res = await http()[method](path).set(as(alicePlainKey)).send({ name: 'x', scopes: ['reports:read'] });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.code).toBe('insufficient_scope');
      // The read-only scope admits a key to the routes too (GET only).
      expect(res.body.requiredScopes).toEqual([ADMIN, SELF, 'api-keys:read']);
    }
    const stored = await service.get(alicePlainId);
    expect(stored?.revokedAt).toBeNull();
    expect(stored?.name).toBe('plain');
  });

  describe('admin', () => {
    it('issues a key for any owner: 201, no-store, server prefix, no hash', async () => {
      const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
      const res = record(
        await http()
          .post('/api-keys')
          .set(as(adminKey))
          .send({ ownerId: 'carol', name: 'carol ci', scopes: ['reports:read'], expiresAt, metadata: { plan: 'pro' } })
          .expect(201),
      );
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body.key).toMatch(/^mgmt_[0-9A-Za-z]+$/);
      expect(res.body.apiKey).toMatchObject({
        ownerId: 'carol',
        name: 'carol ci',
        scopes: ['reports:read'],
        metadata: { plan: 'pro' },
        expiresAt,
        revokedAt: null,
      });
      expect(res.text).not.toContain('keyHash');
      expect(res.body.apiKey.hint.startsWith('mgmt_')).toBe(true);
      // The key works.
      expect((await service.verify(res.body.key))?.ownerId).toBe('carol');
    });

    it('defaults the owner to its own', async () => {
      const res = record(await http().post('/api-keys').set(as(adminKey)).send({ name: 'ops 2', scopes: ['x'] }).expect(201));
      expect(res.body.apiKey.ownerId).toBe('ops');
    });

    it('lists an owner with a real total and cursor pagination', async () => {
      for (let i = 0; i < 5; i++) await service.issue({ ownerId: 'dave', name: `d${i}`, scopes: ['s'] });
      const first = record(await http().get('/api-keys?ownerId=dave&limit=2').set(as(adminKey)).expect(200));
      expect(first.headers['cache-control']).toBe('no-store');
      expect(first.body.total).toBe(5);
      expect(first.body.items).toHaveLength(2);
      expect(first.body.nextCursor).toEqual(expect.any(String));
      const names: string[] = first.body.items.map((k: { name: string }) => k.name);
      let cursor = first.body.nextCursor;
      while (cursor) {
        const page = record(
          await http().get('/api-keys').query({ ownerId: 'dave', limit: '2', cursor }).set(as(adminKey)).expect(200),
        );
        expect(page.body.total).toBe(5);
        names.push(...page.body.items.map((k: { name: string }) => k.name));
        cursor = page.body.nextCursor;
      }
      // Every key exactly once, in the store's order.
      expect([...names].sort()).toEqual(['d0', 'd1', 'd2', 'd3', 'd4']);
      const streamed: string[] = [];
      for await (const k of service.listByOwner('dave')) streamed.push(k.name);
      expect(names).toEqual(streamed);
      expect(JSON.stringify(first.body)).not.toContain('keyHash');
    });

    it('gets, updates, revokes and deletes any key', async () => {
      const { apiKey, key } = await service.issue({ ownerId: 'erin', name: 'e', scopes: ['a'] });
      const got = record(await http().get(`/api-keys/${apiKey.id}`).set(as(adminKey)).expect(200));
      expect(got.body).toMatchObject({ id: apiKey.id, ownerId: 'erin', name: 'e' });
      expect(got.body.keyHash).toBeUndefined();

      const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
      const patched = record(
        await http()
          .patch(`/api-keys/${apiKey.id}`)
          .set(as(adminKey))
          .send({ name: 'renamed', scopes: ['a', 'b'], metadata: { n: 1 }, expiresAt })
          .expect(200),
      );
      expect(patched.body).toMatchObject({ name: 'renamed', scopes: ['a', 'b'], metadata: { n: 1 }, expiresAt });
      const cleared = record(
        await http().patch(`/api-keys/${apiKey.id}`).set(as(adminKey)).send({ expiresAt: null }).expect(200),
      );
      expect(cleared.body.expiresAt).toBeNull();
      expect((await service.get(apiKey.id))?.name).toBe('renamed');

      const revoked = record(await http().post(`/api-keys/${apiKey.id}/revoke`).set(as(adminKey)).expect(200));
      expect(revoked.body.revokedAt).toEqual(expect.any(String));
      expect(await service.verify(key)).toBeNull();

      const deleted = await http().delete(`/api-keys/${apiKey.id}`).set(as(adminKey)).expect(204);
      expect(deleted.text).toBe('');
      expect(await service.get(apiKey.id)).toBeNull();
      await http().get(`/api-keys/${apiKey.id}`).set(as(adminKey)).expect(404);
    });

    it('rotates with a grace period: both keys work until it ends', async () => {
      const { apiKey, key } = await service.issue({ ownerId: 'frank', name: 'f', scopes: ['a'], metadata: { m: 1 } });
      const sent = Date.now();
      const res = record(
        await http().post(`/api-keys/${apiKey.id}/rotate`).set(as(adminKey)).send({ gracePeriodMs: 60_000 }).expect(201),
      );
      const answered = Date.now();
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body.key).toMatch(/^mgmt_/);
      expect(res.body.key).not.toBe(key);
      expect(res.body.apiKey).toMatchObject({ ownerId: 'frank', scopes: ['a'], metadata: { m: 1 }, rotatedFromId: apiKey.id });
      const graceEnd = Date.parse(res.body.previous.expiresAt);
      // 60 s from when the rotation was stored: while the request ran, however long it took.
      expect(graceEnd).toBeGreaterThanOrEqual(sent + 60_000);
      expect(graceEnd).toBeLessThanOrEqual(answered + 60_000);
      expect((await service.verify(key))?.id).toBe(apiKey.id);
      expect((await service.verify(res.body.key))?.id).toBe(res.body.apiKey.id);

      const immediate = record(await http().post(`/api-keys/${res.body.apiKey.id}/rotate`).set(as(adminKey)).expect(201));
      expect(await service.verify(res.body.key)).toBeNull();
      expect((await service.verify(immediate.body.key))?.ownerId).toBe('frank');
    });

    it('answers a second rotation of a key 409 already_rotated, naming the replacement, and changes nothing', async () => {
      const { apiKey, key } = await service.issue({ ownerId: 'gina', name: 'g', scopes: ['a'] });
      const first = record(
        await http().post(`/api-keys/${apiKey.id}/rotate`).set(as(adminKey)).send({ gracePeriodMs: 60_000 }).expect(201),
      );
      const second = record(
        await http().post(`/api-keys/${apiKey.id}/rotate`).set(as(adminKey)).send({ gracePeriodMs: 1_000 }).expect(409),
      );
      expect(second.body).toEqual({
        statusCode: 409,
        error: 'Conflict',
        code: 'already_rotated',
        message: expect.any(String),
        replacementId: first.body.apiKey.id,
      });
      expect(second.text).not.toMatch(/mgmt_[0-9A-Za-z]{40,}/);
      expect((await service.get(apiKey.id))?.expiresAt).toEqual(new Date(first.body.previous.expiresAt));
      expect(await service.countByOwner('gina')).toBe(2);
      expect((await service.verify(key))?.id).toBe(apiKey.id);
    });
  });

  describe('self-service', () => {
    it('issues keys for its own owner with scopes it holds', async () => {
      const res = record(
        await http().post('/api-keys').set(as(aliceSelfKey)).send({ name: 'mine', scopes: ['reports:read'] }).expect(201),
      );
      expect(res.body.apiKey.ownerId).toBe('alice');
      const same = record(
        await http()
          .post('/api-keys')
          .set(as(aliceSelfKey))
          .send({ ownerId: 'alice', name: 'mine 2', scopes: [SELF] })
          .expect(201),
      );
      expect(same.body.apiKey.scopes).toEqual([SELF]);
    });

    it('cannot issue for another owner', async () => {
      const before = await service.countByOwner('bob');
      const res = await http()
        .post('/api-keys')
        .set(as(aliceSelfKey))
        .send({ ownerId: 'bob', name: 'x', scopes: ['reports:read'] })
        .expect(403);
      expect(res.body.code).toBe('forbidden_owner');
      expect(await service.countByOwner('bob')).toBe(before);
    });

    it('cannot grant a scope it does not hold, on issue or update', async () => {
      const before = await service.countByOwner('alice');
      for (const scopes of [[ADMIN], ['reports:read', 'reports:write']]) {
        const res = await http().post('/api-keys').set(as(aliceSelfKey)).send({ name: 'x', scopes }).expect(403);
        expect(res.body.code).toBe('scope_escalation');
        expect(res.text).not.toContain('reports:read');
      }
      expect(await service.countByOwner('alice')).toBe(before);

      const patch = await http()
        .patch(`/api-keys/${alicePlainId}`)
        .set(as(aliceSelfKey))
        .send({ scopes: ['reports:read', ADMIN] })
        .expect(403);
      expect(patch.body.code).toBe('scope_escalation');
      expect((await service.get(alicePlainId))?.scopes).toEqual(['reports:read']);
    });

    it('cannot rotate or extend its owner\'s keys that hold more than it does', async () => {
      const rotate = await http().post(`/api-keys/${aliceWriterId}/rotate`).set(as(aliceSelfKey)).expect(403);
      expect(rotate.body.code).toBe('scope_escalation');
      expect(rotate.body.key).toBeUndefined();
      const extend = await http()
        .patch(`/api-keys/${aliceWriterId}`)
        .set(as(aliceSelfKey))
        .send({ expiresAt: new Date(Date.now() + 1e9).toISOString() })
        .expect(403);
      expect(extend.body.code).toBe('scope_escalation');
      expect(await service.countByOwner('alice')).toBeGreaterThan(0);
      expect((await service.get(aliceWriterId))?.expiresAt).toBeNull();
    });

    it('manages its own owner\'s keys: list, get, update, rotate, revoke, delete', async () => {
      const list = record(await http().get('/api-keys').set(as(aliceSelfKey)).expect(200));
      expect(list.body.total).toBe(await service.countByOwner('alice'));
      expect(list.body.items.every((k: { ownerId: string }) => k.ownerId === 'alice')).toBe(true);

      const { apiKey } = await service.issue({ ownerId: 'alice', name: 'temp', scopes: ['reports:read'] });
      record(await http().get(`/api-keys/${apiKey.id}`).set(as(aliceSelfKey)).expect(200));
      const patched = record(
        await http().patch(`/api-keys/${apiKey.id}`).set(as(aliceSelfKey)).send({ name: 'temp 2' }).expect(200),
      );
      expect(patched.body.name).toBe('temp 2');
      const rotated = record(await http().post(`/api-keys/${apiKey.id}/rotate`).set(as(aliceSelfKey)).expect(201));
      expect(rotated.body.apiKey.ownerId).toBe('alice');
      const again = record(await http().post(`/api-keys/${apiKey.id}/rotate`).set(as(aliceSelfKey)).expect(409));
      expect(again.body).toMatchObject({ code: 'already_rotated', replacementId: rotated.body.apiKey.id });
      record(await http().post(`/api-keys/${rotated.body.apiKey.id}/revoke`).set(as(aliceSelfKey)).expect(200));
      await http().delete(`/api-keys/${rotated.body.apiKey.id}`).set(as(aliceSelfKey)).expect(204);
      expect(await service.get(rotated.body.apiKey.id)).toBeNull();
    });

    it('sees another owner\'s key as not found, on every route, and changes nothing', async () => {
      const unknown = await http().get('/api-keys/00000000-0000-4000-8000-000000000000').set(as(aliceSelfKey)).expect(404);
      for (const [method, path] of routes(bobKeyId).slice(2)) {
        const res = await http()[method](path).set(as(aliceSelfKey)).send(method === 'patch' ? { name: 'pwned' } : {});
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.body).toEqual(unknown.body);
      }
      const bob = await service.get(bobKeyId);
      expect(bob).toMatchObject({ name: 'bob', revokedAt: null, expiresAt: null });
      expect(await service.countByOwner('bob')).toBe(1);
    });

    it('cannot list another owner', async () => {
      const res = await http().get('/api-keys?ownerId=bob').set(as(aliceSelfKey)).expect(403);
      expect(res.body.code).toBe('forbidden_owner');
      expect(res.text).not.toContain(bobKeyId);
    });
  });

  describe('validation', () => {
    const future = () => new Date(Date.now() + 3_600_000).toISOString();
    const cases: Array<[string, Record<string, unknown> | unknown[] | string, string]> = [
      ['an unknown field', { name: 'x', scopes: ['a'], prefix: 'evil_' }, 'prefix'],
      ['a numeric name', { name: 42, scopes: ['a'] }, 'name'],
      ['an empty name', { name: '  ', scopes: ['a'] }, 'name'],
      ['a name too long', { name: 'n'.repeat(201), scopes: ['a'] }, 'name'],
      ['a missing name', { scopes: ['a'] }, 'name'],
      ['scopes as a string', { name: 'x', scopes: 'a' }, 'scopes'],
      ['empty scopes', { name: 'x', scopes: [] }, 'scopes'],
      ['a non-string scope', { name: 'x', scopes: ['a', 7] }, 'scopes'],
      ['a scope with a space', { name: 'x', scopes: ['a b'] }, 'scopes'],
      ['a numeric ownerId', { ownerId: 5, name: 'x', scopes: ['a'] }, 'ownerId'],
      ['a past expiry', { name: 'x', scopes: ['a'], expiresAt: '2001-01-01T00:00:00Z' }, 'expiresAt'],
      ['a non-ISO expiry', { name: 'x', scopes: ['a'], expiresAt: 'next tuesday' }, 'expiresAt'],
      ['a numeric expiry', { name: 'x', scopes: ['a'], expiresAt: Date.now() + 1e6 }, 'expiresAt'],
      ['oversized metadata', { name: 'x', scopes: ['a'], metadata: { blob: 'x'.repeat(9000) } }, 'metadata'],
      ['array metadata', { name: 'x', scopes: ['a'], metadata: [1] }, 'metadata'],
      ['an array body', [{ name: 'x', scopes: ['a'] }], 'body'],
    ];

    it.each(cases)('POST / rejects %s with 400 naming the field', async (_label, body, field) => {
      const before = await service.countByOwner('ops');
      const res = await http().post('/api-keys').set(as(adminKey)).send(body as object).expect(400);
      expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request', code: 'validation_failed', field });
      expect(res.body.message).toEqual(expect.stringContaining(field));
      expect(await service.countByOwner('ops')).toBe(before);
    });

    it('POST / accepts the same body once it is fixed', async () => {
      record(
        await http().post('/api-keys').set(as(adminKey)).send({ name: 'x', scopes: ['a'], expiresAt: future() }).expect(201),
      );
    });

    it('PATCH, rotate, revoke and list reject malformed input', async () => {
      const id = alicePlainId;
      const checks: Array<[() => request.Test, string]> = [
        [() => http().patch(`/api-keys/${id}`).set(as(adminKey)).send({}), 'body'],
        [() => http().patch(`/api-keys/${id}`).set(as(adminKey)).send({ ownerId: 'bob' }), 'ownerId'],
        [() => http().patch(`/api-keys/${id}`).set(as(adminKey)).send({ scopes: [] }), 'scopes'],
        [() => http().patch(`/api-keys/${id}`).set(as(adminKey)).send({ expiresAt: '1999-12-31T23:59:59Z' }), 'expiresAt'],
        [() => http().patch(`/api-keys/${id}`).set(as(adminKey)).send({ metadata: { b: 'x'.repeat(9000) } }), 'metadata'],
        [() => http().post(`/api-keys/${id}/rotate`).set(as(adminKey)).send({ gracePeriodMs: -1 }), 'gracePeriodMs'],
        [() => http().post(`/api-keys/${id}/rotate`).set(as(adminKey)).send({ gracePeriodMs: '10' }), 'gracePeriodMs'],
        [() => http().post(`/api-keys/${id}/rotate`).set(as(adminKey)).send({ gracePeriodMs: 3_600_001 }), 'gracePeriodMs'],
        [() => http().post(`/api-keys/${id}/revoke`).set(as(adminKey)).send({ reason: 'x' }), 'reason'],
        [() => http().get('/api-keys?limit=0').set(as(adminKey)), 'limit'],
        [() => http().get('/api-keys?limit=abc').set(as(adminKey)), 'limit'],
        [() => http().get('/api-keys?cursor=not-a-cursor').set(as(adminKey)), 'cursor'],
        [() => http().get('/api-keys?ownerId=a&ownerId=b').set(as(adminKey)), 'ownerId'],
        [() => http().get('/api-keys?sort=name').set(as(adminKey)), 'sort'],
      ];
      for (const [send, field] of checks) {
        const res = await send();
        expect(res.status, field).toBe(400);
        expect(res.body).toMatchObject({ code: 'validation_failed', field });
      }
      expect(await service.get(id)).toMatchObject({ name: 'plain', scopes: ['reports:read'], revokedAt: null, expiresAt: null });
    });
  });

  it('answers 404 for unknown ids on every id route', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'no-such-key', '%2E%2E']) {
      for (const [method, path] of routes(id).slice(2)) {
        const res = await http()[method](path).set(as(adminKey)).send(method === 'patch' ? { name: 'x' } : {});
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.body).toMatchObject({ statusCode: 404, code: 'not_found' });
      }
    }
  });

  it('answers 503 with Retry-After when the store cannot answer', async () => {
    backend.down = true;
    try {
      for (const path of ['/api-keys', `/api-keys/${bobKeyId}`]) {
        const res = await http().get(path).set(as(adminKey));
        expect(res.status, path).toBe(503);
        expect(res.body.code).toBe('backend_unavailable');
        expect(res.headers['retry-after']).toBe('1');
      }
    } finally {
      backend.down = false;
    }
    await http().get(`/api-keys/${bobKeyId}`).set(as(adminKey)).expect(200);
  });

  it('has shown every plaintext key in exactly one response', async () => {
    const keys = transcript.flatMap((text) => text.match(/mgmt_[0-9A-Za-z]{40,}/g) ?? []);
    expect(keys.length).toBeGreaterThanOrEqual(8);
    const all = transcript.join('\n');
    for (const key of keys) expect(all.split(key).length - 1, key.slice(0, 9)).toBe(1);
  });

  it('never shows a plaintext key in a listing or read', async () => {
    const res = await http().get('/api-keys?ownerId=frank').set(as(adminKey)).expect(200);
    expect(res.text).not.toMatch(/mgmt_[0-9A-Za-z]{40,}/);
    expect(res.body.items.length).toBe(3);
  });
});

describe('routes configuration', () => {
  it('fails at start-up when no scope can authorize the routes', () => {
    expect(() => ApiAuthModule.forRoot({ routes: { adminScope: null, selfServiceScope: null } })).toThrow(
      /no key could ever be authorized/,
    );
    expect(() => ApiAuthModule.forRoot({ routes: { adminScope: '', selfServiceScope: '' } })).toThrow(
      /no key could ever be authorized/,
    );
    expect(() =>
      ApiAuthModule.forRootAsync({ useFactory: () => ({}), routes: { adminScope: null, selfServiceScope: null } }),
    ).toThrow(/no key could ever be authorized/);
    expect(() => ApiAuthModule.forRoot({ routes: { adminScope: 'x', selfServiceScope: 'x' } })).toThrow(/must differ/);
    expect(() => ApiAuthModule.forRoot({ routes: { path: '../x' } })).toThrow(/routes\.path/);
    expect(() => ApiAuthModule.forRoot({ routes: { allowedScopes: [] } })).toThrow(/routes\.allowedScopes/);
  });

  it('registers no routes unless asked', async () => {
    const app = await bootApp('express', [ApiAuthModule.forRoot({})], { controllers: [] });
    try {
      const { key } = await app.get(ApiKeyService).issue({ ownerId: 'o', name: 'n', scopes: [ADMIN] });
      await request(app.getHttpServer()).get('/api-keys').set('X-API-Key', key).expect(404);
    } finally {
      await app.close();
    }
  });

  it('serves a configured path, from forRootAsync, with only a self-service scope and an allow-list', async () => {
    const app = await bootApp(
      'fastify',
      [
        ApiAuthModule.forRootAsync({
          useFactory: async () => ({ prefix: 'cfg_' }),
          routes: { path: '/admin/keys/', adminScope: null, selfServiceScope: 'keys:manage', allowedScopes: ['keys:manage', 'read'] },
        }),
      ],
      { controllers: [] },
    );
    try {
      const service = app.get(ApiKeyService);
      const { key: admin } = await service.issue({ ownerId: 'o', name: 'n', scopes: [ADMIN] });
      const { key: self } = await service.issue({ ownerId: 'o', name: 'n', scopes: ['keys:manage', 'read', 'other'] });
      const server = app.getHttpServer();
      // The default admin scope means nothing here: it was switched off.
      await request(server).get('/admin/keys').set('X-API-Key', admin).expect(403);
      await request(server).get('/api-keys').set('X-API-Key', self).expect(404);
      const ok = await request(server).post('/admin/keys').set('X-API-Key', self).send({ name: 'r', scopes: ['read'] }).expect(201);
      expect(ok.body.key).toMatch(/^cfg_/);
      // Held by the caller, but not on the allow-list.
      const res = await request(server).post('/admin/keys').set('X-API-Key', self).send({ name: 'r', scopes: ['other'] });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'validation_failed', field: 'scopes' });
    } finally {
      await app.close();
    }
  });
});
