import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { SlowBackend } from '../fixtures/slow-backend.js';

const TIMEOUT_MS = 1_000;
const BOUND = 20;

describe.each(ADAPTERS)('a hung backend behind the guard over %s', (adapter) => {
  let app: INestApplication;
  let backend: SlowBackend;
  let base: string;
  let key: string;

  const call = async (apiKey: string) => {
    const started = performance.now();
    const res = await fetch(`${base}/t/me`, { headers: { 'x-api-key': apiKey } });
    const body = (await res.json()) as { code?: string; ownerId?: string };
    return { status: res.status, body, retryAfter: res.headers.get('retry-after'), ms: performance.now() - started };
  };

  beforeAll(async () => {
    backend = new SlowBackend();
    app = await bootApp(adapter, [
      ApiAuthModule.forRoot({ prefix: 'pile_', backend, verifyTimeoutMs: TIMEOUT_MS, maxPendingLookups: BOUND, trackUsage: false }),
    ]);
    await app.listen(0, '127.0.0.1');
    base = await app.getUrl();
    ({ key } = await app.get(ApiKeyService).issue({ ownerId: 'pile-owner', name: 'k' }));
  });
  afterAll(async () => {
    backend?.release();
    await app?.close();
  });

  it('answers 503 to everyone, holds only maxPendingLookups lookups, and serves again when the store answers', async () => {
    expect((await call(key)).status).toBe(200);
    const before = backend.lookups;
    backend.hold();

    const unknown = app.get(ApiKeyService).format.generate();
    const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => call(i % 2 ? key : unknown)));

    expect(outcomes.map((o) => o.status)).toEqual(outcomes.map(() => 503));
    expect(outcomes.every((o) => o.body.code === 'backend_unavailable' && o.retryAfter === '1')).toBe(true);
    expect(backend.lookups - before).toBe(BOUND);
    expect(backend.pending).toBe(BOUND);
    // The admitted ones waited for the timeout; the rest did not wait for anything.
    expect(outcomes.filter((o) => o.ms >= TIMEOUT_MS - 5).length).toBe(BOUND);
    expect(outcomes.filter((o) => o.ms < TIMEOUT_MS * 0.7).length).toBe(200 - BOUND);
    expect(Math.max(...outcomes.map((o) => o.ms))).toBeLessThan(TIMEOUT_MS + 1_000);

    backend.release();
    const back = await call(key);
    expect(back.status).toBe(200);
    expect(back.body.ownerId).toBe('pile-owner');
    expect((await call(unknown)).status).toBe(401);
  });
});
