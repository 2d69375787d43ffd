import type { INestApplication } from '@nestjs/common';
import { createHash, createHmac } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, GuardedController, bootApp, type Adapter } from '../fixtures/app.js';
import { InstrumentedBackend } from '../fixtures/instrumented.backend.js';
import { LifecycleController } from '../fixtures/lifecycle.controller.js';
import { CapturingLogger, captureProcessOutput } from '../fixtures/log-capture.js';

const PREFIX = 'sec_';
const PEPPER = 'secrets-spec-pepper-0123456789';

/** Every trace of an exchange: what was asked, what came back. */
interface Exchange {
  label: string;
  status: number;
  headers: string;
  body: string;
}

const cases: Array<[Adapter, boolean]> = ADAPTERS.flatMap((a) => [[a, false], [a, true]] as Array<[Adapter, boolean]>);

describe.each(cases)('no key or hash escapes over %s (pepper: %s)', (adapter, peppered) => {
  let app: INestApplication;
  let backend: InstrumentedBackend;
  let http: ReturnType<typeof request>;
  const logger = new CapturingLogger();
  let output: ReturnType<typeof captureProcessOutput>;
  const exchanges: Exchange[] = [];
  /** Each plaintext key and the one response allowed to carry it. */
  const issuedIn = new Map<string, string>();

  const hashOf = (key: string) =>
    peppered ? createHmac('sha256', PEPPER).update(key).digest('hex') : createHash('sha256').update(key).digest('hex');

  async function send(label: string, req: request.Test): Promise<request.Response> {
    const res = await req;
    exchanges.push({ label, status: res.status, headers: JSON.stringify(res.headers), body: res.text ?? '' });
    return res;
  }

  beforeAll(async () => {
    LifecycleController.errors.length = 0;
    backend = new InstrumentedBackend();
    app = await bootApp(
      adapter,
      [
        ApiAuthModule.forRoot({
          prefix: PREFIX,
          backend,
          pepper: peppered ? PEPPER : undefined,
          usageIntervalMs: 0,
          verifyTimeoutMs: 150,
        }),
      ],
      { controllers: [GuardedController, LifecycleController] },
    );
    app.useLogger(logger);
    output = captureProcessOutput();
    http = request(app.getHttpServer());
  });

  afterAll(() => output?.restore());

  it('runs issue, use, failures, outages, rotate, revoke and delete over HTTP', async () => {
    // Issue: the only response allowed to contain the key.
    const issued = await send(
      'issue',
      http.post('/keys').send({ ownerId: 'tenant-1', name: 'primary', scopes: ['things:read'], metadata: { plan: 'pro' } }),
    );
    expect(issued.status).toBe(201);
    const key: string = issued.body.key;
    const id: string = issued.body.apiKey.id;
    expect(key.startsWith(PREFIX)).toBe(true);
    expect(issued.body.apiKey).not.toHaveProperty('keyHash');
    issuedIn.set(key, 'issue');

    // Verify, by header and bearer; the record handed to the route has no hash.
    expect((await send('use header', http.get('/t/me').set('X-API-Key', key))).status).toBe(200);
    expect((await send('use bearer', http.get('/t/me').set('Authorization', `Bearer ${key}`))).status).toBe(200);
    expect((await send('scopes', http.get('/t/scope-of').set('X-API-Key', key))).status).toBe(200);
    expect((await send('get', http.get(`/keys/${id}`))).status).toBe(200);
    expect((await send('list', http.get('/keys?owner=tenant-1'))).status).toBe(200);
    expect((await send('update', http.post(`/keys/${id}/update`).send({ name: 'renamed' }))).status).toBe(201);

    // Every kind of refusal.
    const typo = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    expect((await send('missing', http.get('/t/me'))).status).toBe(401);
    expect((await send('typo', http.get('/t/me').set('X-API-Key', typo))).status).toBe(401);
    expect((await send('padded', http.get('/t/me').set('X-API-Key', key + 'x'))).status).toBe(401);
    expect((await send('in query', http.get(`/t/me?api_key=${key}`))).status).toBe(401);
    expect((await send('scope', http.get('/t/write').set('X-API-Key', key))).status).toBe(403);
    const other = (await app.get(ApiKeyService).issue({ ownerId: 'tenant-2', name: 'other' })).key;
    issuedIn.set(other, 'never over HTTP');
    expect((await send('conflict', http.get('/t/me').set('X-API-Key', key).set('Authorization', `Bearer ${other}`))).status).toBe(401);

    // The key pasted where an id belongs.
    expect((await send('key as id: get', http.get(`/keys/${key}`))).status).toBe(404);
    expect((await send('key as id: revoke', http.post(`/keys/${key}/revoke`))).status).toBe(404);
    expect((await send('key as id: rotate', http.post(`/keys/${key}/rotate`).send({}))).status).toBe(404);
    expect((await send('key as id: unhandled', http.post(`/keys/${key}/rotate-unhandled`))).status).toBe(500);
    expect((await send('key as id: delete', http.delete(`/keys/${key}`))).status).toBe(204);
    // Validation failures.
    expect((await send('bad issue', http.post('/keys').send({ ownerId: '', name: key }))).status).toBe(400);
    expect((await send('bad update', http.post(`/keys/${id}/update`).send({ expiresAt: '2001-01-01' }))).status).toBe(400);

    // Outages: the store throws, then hangs, then usage writes fail.
    backend.faults.getByHash = 'throw';
    expect((await send('outage', http.get('/t/me').set('X-API-Key', key))).status).toBe(503);
    backend.faults.getByHash = 'hang';
    expect((await send('hang', http.get('/t/me').set('X-API-Key', key))).status).toBe(503);
    delete backend.faults.getByHash;
    backend.faults.recordUsage = 'throw';
    expect((await send('usage fails', http.get('/t/me').set('X-API-Key', key))).status).toBe(200);
    await app.get(ApiKeyService).flushUsage();
    delete backend.faults.recordUsage;
    expect((await send('recovered', http.get('/t/me').set('X-API-Key', key))).status).toBe(200);

    // Rotate: the response carries the new key (its one issue response), never the old one.
    const rotated = await send('rotate', http.post(`/keys/${id}/rotate`).send({ gracePeriodMs: 60_000 }));
    expect(rotated.status).toBe(201);
    const next: string = rotated.body.key;
    const nextId: string = rotated.body.apiKey.id;
    expect(rotated.body.apiKey.rotatedFromId).toBe(id);
    issuedIn.set(next, 'rotate');
    expect((await send('old in grace', http.get('/t/me').set('X-API-Key', key))).status).toBe(200);
    expect((await send('new key', http.get('/t/me').set('X-API-Key', next))).status).toBe(200);

    // Revoke and delete.
    expect((await send('revoke old', http.post(`/keys/${id}/revoke`))).status).toBe(201);
    expect((await send('revoked', http.get('/t/me').set('X-API-Key', key))).status).toBe(401);
    expect((await send('revoke again', http.post(`/keys/${id}/revoke`))).status).toBe(201);
    expect((await send('delete new', http.delete(`/keys/${nextId}`))).status).toBe(204);
    expect((await send('deleted', http.get('/t/me').set('X-API-Key', next))).status).toBe(401);
    expect((await send('get deleted', http.get(`/keys/${nextId}`))).status).toBe(404);

    await app.get(ApiKeyService).flushUsage();
    await app.close();
  });

  it('captured real output, so the search below can fail', () => {
    const logs = [...logger.lines, ...output.lines].join('\n');
    expect(logs).toContain('simulated outage in getByHash'); // the guard's outage report
    expect(logs).toContain('Could not record key usage'); // the usage recorder's warning
    expect(logs).toContain('key operation failed'); // the application's own warnings
    expect(logs).toContain('ApiKeyNotFoundError'); // Nest's handler logging the unhandled 500
    expect(LifecycleController.errors.length).toBe(4); // revoke, rotate, issue, update refused
    expect(exchanges.length).toBeGreaterThan(30);
  });

  it('finds no plaintext key, secret part or hash in any log line, error or other response', () => {
    expect(issuedIn.size).toBe(3);
    const logs = [...logger.lines, ...output.lines];
    const leaks: string[] = [];
    for (const [key, allowedIn] of issuedIn) {
      const needles = {
        key,
        secret: key.slice(PREFIX.length, -6),
        'half of the secret': key.slice(PREFIX.length + 10, PREFIX.length + 32),
        hash: hashOf(key),
        'sha-256': createHash('sha256').update(key).digest('hex'),
      };
      for (const [what, needle] of Object.entries(needles)) {
        logs.forEach((line, i) => line.includes(needle) && leaks.push(`${what} of the ${allowedIn} key in log line ${i}`));
        LifecycleController.errors.forEach((e) => e.includes(needle) && leaks.push(`${what} in an error: ${e.slice(0, 80)}`));
        for (const x of exchanges) {
          if (x.headers.includes(needle)) leaks.push(`${what} in the headers of "${x.label}"`);
          // The issue (or rotate) response carries the key, and so every part of it; nothing else may.
          const allowed = x.label === allowedIn && !['hash', 'sha-256'].includes(what);
          if (x.body.includes(needle) && !allowed) {
            leaks.push(`${what} of the ${allowedIn} key in the body of "${x.label}"`);
          }
        }
      }
    }
    if (peppered) {
      for (const line of logs) if (line.includes(PEPPER)) leaks.push('the pepper in a log line');
      for (const x of exchanges) if (x.body.includes(PEPPER)) leaks.push(`the pepper in "${x.label}"`);
    }
    expect(leaks).toEqual([]);
  });
});
