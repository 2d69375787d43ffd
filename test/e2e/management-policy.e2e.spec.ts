import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, MemoryBackend } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';

const ADMIN = 'api-keys:admin';
const SELF = 'api-keys:self';
/** A window far longer than any test, so counts never reset mid-test. */
const MINUTE = 60_000;
const RESOURCE_FIELDS = [
  'createdAt', 'disabledAt', 'environment', 'expiresAt', 'hint', 'id', 'issuedById', 'lastUsedAt', 'metadata', 'name', 'ownerId', 'policy',
  'revokedAt', 'rotatedFromId', 'scopes', 'updatedAt', 'version',
];

describe.each(ADAPTERS)('per-key policy over the key-management routes on %s', (adapter) => {
  let app: INestApplication;
  let service: ApiKeyService;
  let backend: MemoryBackend;
  let adminKey: string;
  /** Every response body, to check no hash or internal field ever leaves. */
  const transcript: string[] = [];

  const http = () => request(app.getHttpServer());
  const as = (key: string) => ({ 'X-API-Key': key });
  const record = <T extends { text: string }>(res: T): T => {
    transcript.push(res.text ?? '');
    return res;
  };
  /** Status codes of `n` sequential calls to a guarded route with `key`. */
  const hit = async (key: string, n: number) => {
    const statuses: number[] = [];
    for (let i = 0; i < n; i++) statuses.push((await http().get('/t/me').set(as(key))).status);
    return statuses;
  };
  const countOf = async (ownerId: string) => {
    let n = 0;
    for await (const _ of backend.listByOwner(ownerId)) n++;
    return n;
  };
  const issueAsAdmin = async (body: Record<string, unknown>) =>
    record(await http().post('/api-keys').set(as(adminKey)).send({ scopes: ['reports:read'], ...body }));

  beforeAll(async () => {
    backend = new MemoryBackend();
    app = await bootApp(adapter, [
      ApiAuthModule.forRoot({
        prefix: 'pol_',
        environment: 'live',
        acceptEnvironments: ['live', 'test'],
        backend,
        routes: { path: 'api-keys' },
      }),
    ]);
    service = app.get(ApiKeyService);
    adminKey = (await service.issue({ ownerId: 'ops', name: 'admin', scopes: [ADMIN] })).key;
  });
  afterAll(() => app?.close());

  describe('admin', () => {
    it('issues a key with a policy and an environment; the guard enforces the limit on it', async () => {
      const policy = { rateLimits: [{ name: 'burst', limit: 3, windowMs: MINUTE }], quota: { limit: 100, refillIntervalMs: 86_400_000 } };
      const res = await issueAsAdmin({ ownerId: 'carol', name: 'limited', environment: 'test', policy });
      expect(res.status).toBe(201);
      expect(res.body.key).toMatch(/^pol_test_/);
      expect(res.body.apiKey.environment).toBe('test');
      expect(res.body.apiKey.policy).toEqual(policy);
      expect(Object.keys(res.body.apiKey).sort()).toEqual(RESOURCE_FIELDS);
      expect(await hit(res.body.key, 5)).toEqual([200, 200, 200, 429, 429]);
      expect((await service.get(res.body.apiKey.id))?.policy).toEqual(policy);
    });

    it('issues without a policy: policy null, environment the default, no limit', async () => {
      const res = await issueAsAdmin({ ownerId: 'carol', name: 'open' });
      expect(res.status).toBe(201);
      expect(res.body.apiKey).toMatchObject({ environment: 'live', policy: null });
      expect(await hit(res.body.key, 5)).toEqual([200, 200, 200, 200, 200]);
    });

    it('PATCH sets a policy that takes effect at once, GET shows it, PATCH null clears it', async () => {
      const { key, apiKey } = await service.issue({ ownerId: 'carol', name: 'patched', scopes: ['reports:read'] });
      expect(await hit(key, 2)).toEqual([200, 200]);

      const policy = { rateLimits: [{ name: 'tight', limit: 2, windowMs: MINUTE }] };
      const set = record(await http().patch(`/api-keys/${apiKey.id}`).set(as(adminKey)).send({ policy }));
      expect(set.status).toBe(200);
      expect(set.body.policy).toEqual(policy);
      expect(await hit(key, 3)).toEqual([200, 200, 429]);
      const got = record(await http().get(`/api-keys/${apiKey.id}`).set(as(adminKey)).expect(200));
      expect(got.body.policy).toEqual(policy);

      const allowlisted = record(
        await http().patch(`/api-keys/${apiKey.id}`).set(as(adminKey)).send({ policy: { allowedIps: ['10.0.0.0/8'] } }),
      );
      expect(allowlisted.status).toBe(200);
      // The whole policy is replaced: the rate limit is gone, the allowlist shuts out the loopback client.
      expect(allowlisted.body.policy).toEqual({ allowedIps: ['10.0.0.0/8'] });
      const outside = await http().get('/t/me').set(as(key));
      expect(outside.status).toBe(403);
      expect(outside.body.code).toBe('ip_not_allowed');

      const cleared = record(await http().patch(`/api-keys/${apiKey.id}`).set(as(adminKey)).send({ policy: null }));
      expect(cleared.status).toBe(200);
      expect(cleared.body.policy).toBeNull();
      expect((await service.get(apiKey.id))?.policy).toBeNull();
      expect(await hit(key, 4)).toEqual([200, 200, 200, 200]);
    });

    it.each([
      [{ rateLimits: [{ name: 'a', limit: 0, windowMs: 1000 }] }, 'policy.rateLimits[0].limit'],
      [{ rateLimits: [{ name: 'a', limit: 1, windowMs: 1000 }, { name: 'a', limit: 2, windowMs: 1000 }] }, 'policy.rateLimits[1].name'],
      [{ rateLimits: [{ name: 'a', limit: 1, windowMs: '1000' }] }, 'policy.rateLimits[0].windowMs'],
      [{ rateLimits: [] }, 'policy.rateLimits'],
      [{ quota: { limit: -1 } }, 'policy.quota.limit'],
      [{ quota: { limit: 5, refillIntervalMs: 0 } }, 'policy.quota.refillIntervalMs'],
      [{ allowedIps: ['10.0.0.1', 'not-an-ip'] }, 'policy.allowedIps[1]'],
      [{ allowedIps: [] }, 'policy.allowedIps'],
      [{ rateLimit: [{ name: 'a', limit: 1, windowMs: 1000 }] }, 'policy'],
      [{ counterKey: 'someone-else' }, 'policy.counterKey'],
      [[], 'policy'],
      ['none', 'policy'],
    ])('refuses the invalid policy %j with 400 naming %s, on POST and PATCH, storing nothing', async (policy, field) => {
      const before = await countOf('dave');
      const posted = await issueAsAdmin({ ownerId: 'dave', name: 'bad', policy });
      expect(posted.status).toBe(400);
      expect(posted.body).toMatchObject({ statusCode: 400, code: 'validation_failed', field });
      expect(await countOf('dave')).toBe(before);

      const { apiKey } = await service.issue({
        ownerId: 'dave',
        name: 'target',
        policy: { rateLimits: [{ name: 'keep', limit: 7, windowMs: MINUTE }] },
      });
      const patched = record(await http().patch(`/api-keys/${apiKey.id}`).set(as(adminKey)).send({ policy }));
      expect(patched.status).toBe(400);
      expect(patched.body).toMatchObject({ code: 'validation_failed', field });
      expect((await service.get(apiKey.id))?.policy).toEqual({ rateLimits: [{ name: 'keep', limit: 7, windowMs: MINUTE }] });
    });

    it('refuses an environment the deployment does not accept, and any environment change on PATCH', async () => {
      const posted = await issueAsAdmin({ ownerId: 'dave', name: 'staging', environment: 'staging' });
      expect(posted.status).toBe(400);
      expect(posted.body).toMatchObject({ code: 'validation_failed', field: 'environment' });
      const wrongType = await issueAsAdmin({ ownerId: 'dave', name: 'num', environment: 1 });
      expect(wrongType.body).toMatchObject({ code: 'validation_failed', field: 'environment' });

      const { apiKey } = await service.issue({ ownerId: 'dave', name: 'env', scopes: ['reports:read'] });
      const patched = record(await http().patch(`/api-keys/${apiKey.id}`).set(as(adminKey)).send({ environment: 'test' }));
      expect(patched.status).toBe(400);
      expect(patched.body).toMatchObject({ code: 'validation_failed', field: 'environment' });
      expect((await service.get(apiKey.id))?.environment).toBe('live');
    });

    it('shows a rotated key its inherited policy, never the counter key rotate sets', async () => {
      const policy = { rateLimits: [{ name: 'r', limit: 50, windowMs: MINUTE }] };
      const { apiKey } = await service.issue({ ownerId: 'erin', name: 'to-rotate', policy });
      const rotated = record(await http().post(`/api-keys/${apiKey.id}/rotate`).set(as(adminKey)).send({}).expect(201));
      // The record keeps its counters under the old id; the response shows the rules only.
      expect((await service.get(rotated.body.apiKey.id))?.policy?.counterKey).toBe(apiKey.id);
      expect(rotated.body.apiKey.policy).toEqual(policy);
      expect(rotated.body.previous.policy).toEqual(policy);
      const listed = record(await http().get('/api-keys').query({ ownerId: 'erin' }).set(as(adminKey)).expect(200));
      for (const item of listed.body.items) expect(item.policy).toEqual(policy);
    });
  });

  describe('self-service', () => {
    it('may not set a policy on issue, nor set, change or clear one on PATCH (403 forbidden_policy)', async () => {
      const self = await service.issue({ ownerId: 'frank', name: 'self', scopes: [SELF, 'reports:read'] });
      const limited = { rateLimits: [{ name: 'admin-set', limit: 1_000, windowMs: MINUTE }] };
      const { apiKey: target } = await service.issue({ ownerId: 'frank', name: 'limited', scopes: ['reports:read'], policy: limited });
      const before = await countOf('frank');

      for (const policy of [limited, null, {}]) {
        const posted = record(
          await http().post('/api-keys').set(as(self.key)).send({ name: 'mine', scopes: ['reports:read'], policy }),
        );
        expect(posted.status, JSON.stringify(policy)).toBe(403);
        expect(posted.body.code).toBe('forbidden_policy');

        const patched = record(await http().patch(`/api-keys/${target.id}`).set(as(self.key)).send({ policy }));
        expect(patched.status, JSON.stringify(policy)).toBe(403);
        expect(patched.body.code).toBe('forbidden_policy');
      }
      expect(await countOf('frank')).toBe(before);
      expect((await service.get(target.id))?.policy).toEqual(limited);

      // Other changes to a key with a policy stay allowed, and leave the policy alone.
      const renamed = record(await http().patch(`/api-keys/${target.id}`).set(as(self.key)).send({ name: 'renamed' }));
      expect(renamed.status).toBe(200);
      expect(renamed.body.policy).toEqual(limited);
    });

    it("issues keys under the caller's own policy and counters: minting keys does not multiply the budget", async () => {
      const policy = { rateLimits: [{ name: 'customer', limit: 5, windowMs: MINUTE }], allowedIps: ['127.0.0.0/8', '::1'] };
      const self = await service.issue({ ownerId: 'gina', name: 'self', scopes: [SELF, 'reports:read'], policy });
      // This request is the caller's first of five.
      const minted = record(
        await http().post('/api-keys').set(as(self.key)).send({ name: 'minted', scopes: ['reports:read'] }),
      );
      expect(minted.status).toBe(201);
      expect(minted.body.apiKey.policy).toEqual(policy);
      expect((await service.get(minted.body.apiKey.id))?.policy?.counterKey).toBe(self.apiKey.id);
      expect(await hit(minted.body.key, 5)).toEqual([200, 200, 200, 200, 429]);
      expect(await hit(self.key, 1)).toEqual([429]);
    });

    it("issues in the caller's own environment only (403 forbidden_environment otherwise)", async () => {
      const self = await service.issue({ ownerId: 'hugo', name: 'self', scopes: [SELF, 'reports:read'], environment: 'test' });
      const implicit = record(await http().post('/api-keys').set(as(self.key)).send({ name: 'a', scopes: ['reports:read'] }));
      expect(implicit.status).toBe(201);
      expect(implicit.body.apiKey.environment).toBe('test');
      expect(implicit.body.key).toMatch(/^pol_test_/);

      const before = await countOf('hugo');
      const live = record(
        await http().post('/api-keys').set(as(self.key)).send({ name: 'b', scopes: ['reports:read'], environment: 'live' }),
      );
      expect(live.status).toBe(403);
      expect(live.body.code).toBe('forbidden_environment');
      expect(await countOf('hugo')).toBe(before);
    });
  });

  it('never sent a key hash or a counter key in any response', () => {
    expect(transcript.length).toBeGreaterThan(20);
    for (const text of transcript) {
      expect(text).not.toContain('keyHash');
      // As a property: the 400 for a client-sent counterKey names the field, which is fine.
      expect(text).not.toMatch(/"counterKey"\s*:/);
    }
  });
});
