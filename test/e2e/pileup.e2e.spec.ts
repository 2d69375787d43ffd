import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, KeyHasher } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { CapturingLogger } from '../fixtures/log-capture.js';
import { SlowBackend } from '../fixtures/slow-backend.js';

const TIMEOUT_MS = 2_000;
const BOUND = 20;

describe.each(ADAPTERS)('a hung backend behind the guard over %s', (adapter) => {
  let app: INestApplication;
  let backend: SlowBackend;
  let base: string;
  let key: string;
  let logs: CapturingLogger;

  // The order answers arrive in, not their wall-clock times, tells who waited.
  let answered = 0;
  const call = async (apiKey: string) => {
    const res = await fetch(`${base}/t/me`, { headers: { 'x-api-key': apiKey } });
    const body = (await res.json()) as { code?: string; ownerId?: string };
    return { apiKey, status: res.status, body, retryAfter: res.headers.get('retry-after'), order: answered++ };
  };

  beforeAll(async () => {
    backend = new SlowBackend();
    app = await bootApp(adapter, [
      ApiAuthModule.forRoot({ prefix: 'pile_', backend, verifyTimeoutMs: TIMEOUT_MS, maxPendingLookups: BOUND, trackUsage: false }),
    ]);
    await app.listen(0, '127.0.0.1');
    base = await app.getUrl();
    logs = new CapturingLogger();
    app.useLogger(logs);
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

    // 200 distinct well-formed keys, so the store's calls say which requests it was asked for.
    const keys = Array.from({ length: 200 }, () => app.get(ApiKeyService).format.generate());
    const asked = new Set<string>();
    const lookup = backend.getByHash.bind(backend);
    backend.getByHash = (keyHash: string) => {
      asked.add(keyHash);
      return lookup(keyHash);
    };
    const outcomes = await Promise.all(keys.map((k) => call(k)));

    expect(outcomes.map((o) => o.status)).toEqual(outcomes.map(() => 503));
    expect(outcomes.every((o) => o.body.code === 'backend_unavailable' && o.retryAfter === '1')).toBe(true);
    expect(backend.lookups - before).toBe(BOUND);
    expect(backend.pending).toBe(BOUND);
    expect(asked.size).toBe(BOUND);
    // The admitted ones waited for the timeout; every other one was answered before any of them.
    const hasher = new KeyHasher();
    const admitted = outcomes.filter((o) => asked.has(hasher.hash(o.apiKey)));
    const refused = outcomes.filter((o) => !asked.has(hasher.hash(o.apiKey)));
    expect(admitted).toHaveLength(BOUND);
    expect(Math.max(...refused.map((o) => o.order))).toBeLessThan(Math.min(...admitted.map((o) => o.order)));
    const unknown = keys[0]!;

    // The refusals are logged as one outage, on purpose here: kept and asserted.
    expect(logs.lines.filter((line) => line.startsWith('[error]'))).toEqual([
      expect.stringMatching(/^\[error\] The API key backend is unavailable; answering 503/),
    ]);

    backend.release();
    const back = await call(key);
    expect(back.status).toBe(200);
    expect(back.body.ownerId).toBe('pile-owner');
    expect((await call(unknown)).status).toBe(401);
  });
});
