import type { INestApplication } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, MemoryBackend } from 'nestjs-api-auth';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { ADAPTERS, bootApp, type Adapter } from '../fixtures/app.js';

// The console in a browser is tested in test/browser (npm run test:browser); these
// checks need no browser: the routes, the headers, the option, the shipped text.

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const asset = (name: string) => readFileSync(new URL(`../../lib/console/assets/${name}`, import.meta.url), 'utf8');

describe.each(ADAPTERS)('operator console over %s', (adapter) => {
  let withConsole: INestApplication;
  let without: INestApplication;
  let adminKey: string;
  let keyId: string;

  beforeAll(async () => {
    withConsole = await bootApp(
      adapter,
      [ApiAuthModule.forRoot({ backend: new MemoryBackend(), header: 'X-Tenant-Key', routes: { path: 'admin/keys', console: true } })],
      { controllers: [] },
    );
    without = await bootApp(adapter, [ApiAuthModule.forRoot({ backend: new MemoryBackend(), routes: true })], { controllers: [] });
    const issued = await withConsole.get(ApiKeyService).issue({ ownerId: 'ops', name: 'admin', scopes: ['api-keys:admin'] });
    adminKey = issued.key;
    keyId = issued.apiKey.id;
  });
  afterAll(async () => {
    await withConsole?.close();
    await without?.close();
  });

  it('serves the page, its script, style and icon without a key, with the security headers', async () => {
    for (const [path, type] of [
      ['/admin/keys/console', 'text/html'],
      ['/admin/keys/console/console.js', 'text/javascript'],
      ['/admin/keys/console/console.css', 'text/css'],
      ['/admin/keys/console/icon.svg', 'image/svg+xml'],
    ] as const) {
      const response = await request(withConsole.getHttpServer()).get(path).buffer(true);
      expect(response.status, path).toBe(200);
      expect(response.headers['content-type'], path).toContain(type);
      expect(response.headers['content-security-policy'], path).toBe(CSP);
      expect(response.headers['x-frame-options'], path).toBe('DENY');
      expect(response.headers['cache-control'], path).toBe('no-store');
      expect(response.headers['referrer-policy'], path).toBe('no-referrer');
      expect(response.headers['x-content-type-options'], path).toBe('nosniff');
    }
  });

  it('tells the page which header carries the key, and loads its assets relative to the page', async () => {
    const { text } = await request(withConsole.getHttpServer()).get('/admin/keys/console');
    expect(text).toContain('<meta name="api-auth-key-header" content="x-tenant-key">');
    expect(text).toContain('<script src="console/console.js" defer></script>');
    expect(text).toContain('<link rel="stylesheet" href="console/console.css">');
  });

  it('leaves the guarded routes as they were', async () => {
    const server = withConsole.getHttpServer();
    expect((await request(server).get(`/admin/keys/${keyId}`)).status).toBe(401);
    const own = await request(server).get(`/admin/keys/${keyId}`).set('X-Tenant-Key', adminKey);
    expect(own.status).toBe(200);
    expect(own.body.id).toBe(keyId);
  });

  it('is off unless asked for: <path>/console is then the guarded key route', async () => {
    const response = await request(without.getHttpServer()).get('/api-keys/console');
    expect(response.status).toBe(401);
    expect(response.text).not.toContain('<html');
  });

  it('sends a trailing-slash URL to the page itself, or does not serve it', async () => {
    const response = await request(withConsole.getHttpServer()).get('/admin/keys/console/');
    if (adapter === 'express') {
      // Express matches it; the relative script URL would then point one level too deep.
      expect(response.status).toBe(308);
      expect(response.headers.location).toBe('../console');
    } else {
      expect(response.status).toBe(404);
    }
  });
});

/** An app with a global prefix, which the page's relative URLs must survive. */
async function bootPrefixed(adapter: Adapter): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [ApiAuthModule.forRoot({ backend: new MemoryBackend(), routes: { console: true } })],
  }).compile();
  const app = adapter === 'fastify' ? moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter()) : moduleRef.createNestApplication();
  app.setGlobalPrefix('v1');
  await app.init();
  if (adapter === 'fastify') await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  return app;
}

describe.each(ADAPTERS)('operator console under a global prefix over %s', (adapter) => {
  let app: INestApplication;
  beforeAll(async () => {
    app = await bootPrefixed(adapter);
  });
  afterAll(() => app?.close());

  it('serves the page and the assets its relative URLs name under the prefix', async () => {
    const server = app.getHttpServer();
    expect((await request(server).get('/v1/api-keys/console')).status).toBe(200);
    // The page at /v1/api-keys/console names "console/console.js": /v1/api-keys/console/console.js.
    const script = await request(server).get('/v1/api-keys/console/console.js').buffer(true);
    expect(script.status).toBe(200);
    expect(script.text).toContain("new URL('..', document.currentScript.src)");
    expect((await request(server).get('/api-keys/console')).status).toBe(404);
  });
});

describe('routes.console option', () => {
  it('must be a boolean', () => {
    expect(() => ApiAuthModule.forRoot({ routes: { console: 'yes' as unknown as boolean } })).toThrow(
      'nestjs-api-auth: option "routes.console" must be true or false (got "yes").',
    );
  });
});

describe('the shipped console', () => {
  it('has no inline script, style or event handler in its page', () => {
    const html = asset('console.html');
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script src="console/console.js" defer>']);
    expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=|javascript:/i);
  });

  it('gives password managers no password field to save the pasted key from', () => {
    const html = asset('console.html');
    expect(html).not.toContain('type="password"');
    expect(html).toMatch(/<input id="admin-key" class="masked" type="text" autocomplete="off"/);
  });

  it('never builds HTML from strings, evaluates code, or stores anything in the browser', () => {
    const script = asset('console.js');
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(['"`]/);
    expect(script).not.toMatch(/localStorage|sessionStorage|indexedDB|document\.cookie|caches\.|console\.(log|info|debug)/);
  });
});
