import { Logger, type INestApplication } from '@nestjs/common';
import { Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { InstrumentedBackend } from '../fixtures/instrumented.backend.js';
import { settlesWithoutTimers, track } from '../fixtures/settled.js';

describe.each(ADAPTERS)('ApiKeyGuard when the backend fails, over %s', (adapter) => {
  let app: INestApplication;
  let backend: InstrumentedBackend;
  let http: ReturnType<typeof request>;
  let key: string;

  beforeAll(async () => {
    backend = new InstrumentedBackend();
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'test_', backend, verifyTimeoutMs: 250 })]);
    http = request(app.getHttpServer());
    ({ key } = await app.get(ApiKeyService).issue({ ownerId: 'user-1', name: 'k' }));
  });
  beforeEach(() => {
    // The guard reports an outage through Nest's logger; keep the test output clean.
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    delete backend.faults.getByHash;
    vi.restoreAllMocks();
  });
  afterAll(() => app.close());

  function expect503(res: request.Response): void {
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      code: 'backend_unavailable',
      message: 'API key verification is temporarily unavailable. Retry later.',
    });
    expect(res.headers['retry-after']).toBe('1');
    expect(res.headers['www-authenticate']).toBeUndefined();
    // The store's own error stays on the server.
    expect(res.text).not.toContain('simulated outage');
  }

  it('answers 503 backend_unavailable with Retry-After when the backend throws, never 200 or 500', async () => {
    backend.faults.getByHash = 'throw';
    for (let i = 0; i < 3; i++) expect503(await http.get('/t/me').set('X-API-Key', key));
    expect(backend.calls.getByHash).toBeGreaterThanOrEqual(3);
  });

  it('answers 503 at verifyTimeoutMs, not before, when the backend hangs', async () => {
    // An app of its own booted under fake timers, so its lookup deadline is on the fake
    // clock: the request cannot end before 250 fake ms, and only the deadline ends it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const hanging = new InstrumentedBackend();
    let timed: INestApplication | undefined;
    try {
      timed = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'test_', backend: hanging, verifyTimeoutMs: 250 })]);
      const { key: hangingKey } = await timed.get(ApiKeyService).issue({ ownerId: 'user-1', name: 'k' });
      hanging.faults.getByHash = 'hang';
      const reply = track(request(timed.getHttpServer()).get('/t/me').set('X-API-Key', hangingKey).then((res) => res));
      // The request has reached the store (and armed its deadline) without any timer firing.
      for (let turn = 0; turn < 1_000 && hanging.calls.getByHash === 0; turn++) await new Promise((r) => setImmediate(r));
      expect(hanging.calls.getByHash).toBe(1);
      await vi.advanceTimersByTimeAsync(249);
      expect(await settlesWithoutTimers(reply, 50)).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await settlesWithoutTimers(reply)).toBe(true);
      expect503(reply.value!);
    } finally {
      vi.useRealTimers();
      await timed?.close();
    }
  });

  it('logs the outage once, not once per request, says when the backend is back, and holds back a flap within the minute', async () => {
    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const log = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    // Start from a healthy backend: an earlier test may have left the guard in "down" state.
    await http.get('/t/me').set('X-API-Key', key).expect(200);
    // A minute past any report an earlier test's outage made (at most one error a minute).
    const start = Date.now() + 61_000;
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(start);
      error.mockClear();
      log.mockClear();
      backend.faults.getByHash = 'throw';
      for (let i = 0; i < 5; i++) await http.get('/t/me').set('X-API-Key', key).expect(503);
      expect(error).toHaveBeenCalledTimes(1);
      expect(String(error.mock.calls[0]![0])).toContain('simulated outage in getByHash');
      delete backend.faults.getByHash;
      await http.get('/t/me').set('X-API-Key', key).expect(200);
      expect(log.mock.calls.filter(([m]) => String(m).includes('answers again'))).toHaveLength(1);
      // A second outage 10 s later is held back, and so is its end.
      vi.setSystemTime(start + 10_000);
      backend.faults.getByHash = 'throw';
      await http.get('/t/me').set('X-API-Key', key).expect(503);
      delete backend.faults.getByHash;
      await http.get('/t/me').set('X-API-Key', key).expect(200);
      expect(error).toHaveBeenCalledTimes(1);
      expect(log.mock.calls.filter(([m]) => String(m).includes('answers again'))).toHaveLength(1);
      // The next one after the minute is reported, with the one held back.
      vi.setSystemTime(start + 60_000);
      backend.faults.getByHash = 'throw';
      await http.get('/t/me').set('X-API-Key', key).expect(503);
      expect(error).toHaveBeenCalledTimes(2);
      expect(String(error.mock.calls[1]![0])).toContain('(1 shorter outage since the last report)');
    } finally {
      vi.useRealTimers();
    }
  });

  it('still answers 401 without touching the backend for missing and malformed keys during an outage', async () => {
    backend.faults.getByHash = 'throw';
    const before = backend.calls.getByHash;
    expect((await http.get('/t/me').expect(401)).body.code).toBe('missing_api_key');
    expect((await http.get('/t/me').set('X-API-Key', key.slice(0, -1) + '!').expect(401)).body.code).toBe(
      'invalid_api_key',
    );
    expect(backend.calls.getByHash).toBe(before);
  });

  it('lets the key through again once the backend recovers', async () => {
    backend.faults.getByHash = 'throw';
    await http.get('/t/me').set('X-API-Key', key).expect(503);
    delete backend.faults.getByHash;
    expect((await http.get('/t/me').set('X-API-Key', key).expect(200)).body.ownerId).toBe('user-1');
  });

  it('never fails a request when recording usage throws', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const fresh = (await app.get(ApiKeyService).issue({ ownerId: 'user-2', name: 'k' })).key;
    backend.faults.recordUsage = 'throw';
    try {
      for (let i = 0; i < 3; i++) await http.get('/t/me').set('X-API-Key', fresh).expect(200);
      await app.get(ApiKeyService).flushUsage();
      expect(backend.calls.recordUsage).toBeGreaterThanOrEqual(1);
      expect(warn).toHaveBeenCalled();
    } finally {
      delete backend.faults.recordUsage;
    }
  });
});

describe.each(ADAPTERS)('lastUsedAt under 1,000 requests over %s', (adapter) => {
  let app: INestApplication;
  let backend: InstrumentedBackend;
  const agent = new Agent({ keepAlive: true, maxSockets: 50 });

  beforeAll(async () => {
    backend = new InstrumentedBackend();
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'test_', backend, usageIntervalMs: 60_000 })]);
    await app.listen(0, '127.0.0.1');
  });
  afterAll(async () => {
    agent.destroy();
    await app.close();
  });

  it('writes lastUsedAt once for 1,000 authenticated requests', async () => {
    const { key, apiKey } = await app.get(ApiKeyService).issue({ ownerId: 'user-1', name: 'k' });
    const { port } = app.getHttpServer().address() as AddressInfo;
    const statuses = await Promise.all(
      Array.from({ length: 1_000 }, () =>
        fetchStatus(`http://127.0.0.1:${port}/t/me`, { 'x-api-key': key }, agent),
      ),
    );
    expect(statuses.every((s) => s === 200)).toBe(true);
    await app.get(ApiKeyService).flushUsage();
    expect(backend.calls.getByHash).toBe(1_000);
    expect(backend.calls.recordUsage).toBe(1);
    expect(backend.usage[0]?.id).toBe(apiKey.id);
    expect((await backend.getById(apiKey.id))?.lastUsedAt).toBeInstanceOf(Date);
  });
});

/** A GET over a keep-alive agent (supertest opens a connection per request). */
async function fetchStatus(url: string, headers: Record<string, string>, agent: Agent): Promise<number> {
  const { request: httpRequest } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}
