import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS } from '../fixtures/app.js';
import { bootPolicyApp, call, makeSetup, SETUP_NAMES, type Setup } from '../fixtures/rate-limit.setups.js';

describe.each(ADAPTERS)('per-key IP allowlists over %s', (adapter) => {
  describe.each(SETUP_NAMES)('on the %s setup', (setupName) => {
    let setup: Setup;
    let direct: { app: INestApplication; url: string };
    let proxied: { app: INestApplication; url: string };
    let service: ApiKeyService;

    beforeAll(async () => {
      setup = await makeSetup(setupName, `ip-allowlist-${adapter}`);
      // One app reached directly (no proxy trusted), one behind a trusted proxy on 127.0.0.1.
      direct = await bootPolicyApp(adapter, { prefix: 'ip_', ...setup.create() });
      proxied = await bootPolicyApp(adapter, { prefix: 'ip_', ...setup.create() }, { trustProxy: '127.0.0.1' });
      service = direct.app.get(ApiKeyService);
    });
    afterAll(async () => {
      await direct?.app.close();
      await proxied?.app.close();
      await setup?.cleanup();
    });

    it('serves a caller whose connection address is in the list', async () => {
      const { key } = await service.issue({ ownerId: 'ip', name: 'loopback', policy: { allowedIps: ['127.0.0.0/8', '::1'] } });
      expect((await call(direct.url, '/p/ping', key)).status).toBe(200);
    });

    it('answers 403 ip_not_allowed outside the list, without a challenge or the list itself', async () => {
      const { key } = await service.issue({ ownerId: 'ip', name: 'office', policy: { allowedIps: ['10.0.0.0/8', '2001:db8::/32'] } });
      const res = await call(direct.url, '/p/ping', key);
      expect(res.status).toBe(403);
      expect(res.body).toEqual({
        statusCode: 403,
        error: 'Forbidden',
        code: 'ip_not_allowed',
        message: 'The API key may not be used from this address.',
      });
      expect(res.headers.has('www-authenticate')).toBe(false);
      expect(JSON.stringify(res.body)).not.toContain('10.0.0.0');
    });

    it('ignores X-Forwarded-For when the app trusts no proxy: a client cannot pick its address', async () => {
      const { key } = await service.issue({ ownerId: 'ip', name: 'spoof', policy: { allowedIps: ['10.0.0.0/8'] } });
      expect((await call(direct.url, '/p/ping', key, { 'x-forwarded-for': '10.1.2.3' })).status).toBe(403);
    });

    it('behind a trusted proxy, uses the client address the proxy reports (IPv4 and IPv6)', async () => {
      const v4 = await service.issue({ ownerId: 'ip', name: 'v4', policy: { allowedIps: ['10.0.0.0/8'] } });
      expect((await call(proxied.url, '/p/ping', v4.key, { 'x-forwarded-for': '10.1.2.3' })).status).toBe(200);
      expect((await call(proxied.url, '/p/ping', v4.key, { 'x-forwarded-for': '192.0.2.44' })).status).toBe(403);
      // No header: the proxy itself (127.0.0.1) is the client, and it is not in the list.
      expect((await call(proxied.url, '/p/ping', v4.key)).status).toBe(403);

      const v6 = await service.issue({ ownerId: 'ip', name: 'v6', policy: { allowedIps: ['2001:db8::/32'] } });
      expect((await call(proxied.url, '/p/ping', v6.key, { 'x-forwarded-for': '2001:db8:5::1' })).status).toBe(200);
      expect((await call(proxied.url, '/p/ping', v6.key, { 'x-forwarded-for': '2001:db9::1' })).status).toBe(403);
    });

    it('behind a trusted proxy, takes the first untrusted hop, not an address the client prepended', async () => {
      const { key } = await service.issue({ ownerId: 'ip', name: 'chain', policy: { allowedIps: ['10.0.0.0/8'] } });
      // The client sent "X-Forwarded-For: 10.9.9.9"; the proxy appended the real 192.0.2.7.
      expect((await call(proxied.url, '/p/ping', key, { 'x-forwarded-for': '10.9.9.9, 192.0.2.7' })).status).toBe(403);
      // A trusted hop (127.0.0.1) between the client and this app is skipped over.
      expect((await call(proxied.url, '/p/ping', key, { 'x-forwarded-for': '10.9.9.9, 127.0.0.1' })).status).toBe(200);
    });

    it('applies to keys that changed their list through update', async () => {
      const { key, apiKey } = await service.issue({ ownerId: 'ip', name: 'moves', policy: { allowedIps: ['10.0.0.0/8'] } });
      expect((await call(direct.url, '/p/ping', key)).status).toBe(403);
      await service.update(apiKey.id, { policy: { allowedIps: ['127.0.0.1'] } });
      expect((await call(direct.url, '/p/ping', key)).status).toBe(200);
      await service.update(apiKey.id, { policy: null });
      expect((await service.get(apiKey.id))?.policy).toBeNull();
      expect((await call(direct.url, '/p/ping', key, { 'x-forwarded-for': '10.1.2.3' })).status).toBe(200);
    });
  });
});
