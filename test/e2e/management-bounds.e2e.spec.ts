import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { MANAGEMENT_METHODS, SlowBackend } from '../fixtures/slow-backend.js';

const TIMEOUT_MS = 30_000;
const BOUND = 4;

/** Lets the event loop turn (I/O and all) until `done()`, without timers: they may be fake. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !done(); i++) await turn();
  if (!done()) throw new Error('condition not reached');
}
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe.each(ADAPTERS)('management routes on a hung store over %s', (adapter) => {
  let app: INestApplication;
  let backend: SlowBackend;
  let admin: string;
  let targetId: string;

  const http = () => request(app.getHttpServer());
  /** Every management route, aimed at a key that exists. */
  const routes: Array<[string, () => request.Test]> = [
    ['GET /:id', () => http().get(`/api-keys/${targetId}`)],
    ['GET /', () => http().get('/api-keys').query({ ownerId: 'o' })],
    ['POST /', () => http().post('/api-keys').send({ ownerId: 'o', name: 'n', scopes: ['r'] })],
    ['PATCH /:id', () => http().patch(`/api-keys/${targetId}`).send({ name: 'renamed' })],
    ['POST /:id/revoke', () => http().post(`/api-keys/${targetId}/revoke`)],
    ['POST /:id/rotate', () => http().post(`/api-keys/${targetId}/rotate`).send({})],
    ['DELETE /:id', () => http().delete(`/api-keys/${targetId}`)],
  ];
  /** Starts a request now (supertest is lazy) and resolves to its response. */
  const start = (test: request.Test) => new Promise<request.Response>((resolve, reject) => test.set('X-API-Key', admin).end((e, r) => (e ? reject(e) : resolve(r))));

  beforeAll(async () => {
    backend = new SlowBackend();
    app = await bootApp(
      adapter,
      [ApiAuthModule.forRoot({ prefix: 'hung_', backend, verifyTimeoutMs: TIMEOUT_MS, maxPendingLookups: BOUND, trackUsage: false, routes: true })],
    );
    admin = (await app.get(ApiKeyService).issue({ ownerId: 'ops', name: 'admin', scopes: ['api-keys:admin'] })).key;
  });
  beforeEach(async () => {
    // A fresh target per test: revoke, rotate and delete may have used one up.
    targetId = (await app.get(ApiKeyService).issue({ ownerId: 'o', name: 'target' })).apiKey.id;
  });
  afterEach(() => {
    vi.useRealTimers();
    backend.release();
  });
  afterAll(async () => {
    backend?.release();
    await app?.close();
  });

  it.each(routes.map(([name], i) => [name, i] as const))('%s answers 503 backend_unavailable with Retry-After once verifyTimeoutMs passes', async (_name, i) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    backend.hold(MANAGEMENT_METHODS);
    const pending = start(routes[i]![1]());
    await until(() => backend.pending === 1);
    let answered = false;
    void pending.then(() => (answered = true));
    vi.advanceTimersByTime(TIMEOUT_MS - 1);
    for (let t = 0; t < 50; t++) await turn();
    expect(answered).toBe(false);
    vi.advanceTimersByTime(1);
    const res = await pending;
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ statusCode: 503, code: 'backend_unavailable' });
    expect(res.headers['retry-after']).toBe('1');
    // The store still holds the call: nothing was answered or dropped behind its back.
    expect(backend.pending).toBe(1);
  });

  it(`holds at most ${BOUND} management calls on a hung store, answers the rest 503 at once, and serves again when it answers`, async () => {
    backend.hold(['getById']);
    const before = backend.calls.getById;
    const admitted = Array.from({ length: BOUND }, () => start(http().get(`/api-keys/${targetId}`)));
    await until(() => backend.pending === BOUND);

    const refused = await Promise.all(Array.from({ length: 10 }, () => start(http().get(`/api-keys/${targetId}`))));
    expect(refused.map((r) => r.status)).toEqual(refused.map(() => 503));
    expect(refused.every((r) => r.body.code === 'backend_unavailable' && r.headers['retry-after'] === '1')).toBe(true);
    // The refused ones never reached the store.
    expect(backend.calls.getById - before).toBe(BOUND);
    // Counted apart from lookups: the guard still lets keys in while management is full.
    expect((await start(http().get('/t/me'))).status).toBe(200);

    backend.release();
    expect((await Promise.all(admitted)).map((r) => r.status)).toEqual(admitted.map(() => 200));
    expect((await start(http().get(`/api-keys/${targetId}`))).status).toBe(200);
  });
});
