import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiKeyService, CachedBackend, type ApiAuthModuleOptions, type AuthenticationResult } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { exposeGc, retainedHeap, SlowBackend } from '../fixtures/slow-backend.js';

function serviceOver(backend: SlowBackend | CachedBackend, options: Partial<ApiAuthModuleOptions> = {}): ApiKeyService {
  return new ApiKeyService(resolveApiAuthOptions({ prefix: 'pile_', trackUsage: false, ...options, backend }));
}

/** Authenticates every key at once; resolves to each outcome. */
async function burst(service: ApiKeyService, keys: string[]): Promise<Array<{ result: AuthenticationResult }>> {
  return Promise.all(keys.map(async (key) => ({ result: await service.authenticate(key) })));
}

/**
 * Authenticates every key at once, without waiting: each outcome's `result` is `null`
 * until its request is answered. With fake timers, what has an answer at a given fake
 * time says what was answered at once and what waited, whatever the machine's load.
 */
function watch(service: ApiKeyService, keys: string[]): Array<{ result: AuthenticationResult | null }> {
  return keys.map((key) => {
    const outcome: { result: AuthenticationResult | null } = { result: null };
    void service.authenticate(key).then((result) => (outcome.result = result));
    return outcome;
  });
}

const slow: SlowBackend[] = [];
afterEach(() => {
  vi.useRealTimers();
  // Parked lookups would otherwise outlive the test.
  for (const backend of slow.splice(0)) backend.release();
});

function slowBackend(): SlowBackend {
  const backend = new SlowBackend();
  slow.push(backend);
  return backend;
}

describe('maxPendingLookups', () => {
  it('defaults to 1,000, accepts 0 (no bound), and rejects anything but a non-negative integer', () => {
    expect(resolveApiAuthOptions({}).maxPendingLookups).toBe(1_000);
    expect(resolveApiAuthOptions({ maxPendingLookups: 0 }).maxPendingLookups).toBe(0);
    for (const bad of [-1, 1.5, '10', Number.NaN, Infinity]) {
      expect(() => resolveApiAuthOptions({ maxPendingLookups: bad as number })).toThrow(/"maxPendingLookups" must be a non-negative integer/);
    }
  });
});

describe('a backend that stops answering', () => {
  it('is answered with backend_unavailable at verifyTimeoutMs, not before', async () => {
    vi.useFakeTimers();
    const backend = slowBackend();
    const service = serviceOver(backend, { verifyTimeoutMs: 100 });
    const { key } = await service.issue({ ownerId: 'o', name: 'k' });
    backend.hold();
    const [outcome] = watch(service, [key]);
    await vi.advanceTimersByTimeAsync(99);
    expect(outcome!.result).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome!.result).toMatchObject({ ok: false, code: 'backend_unavailable' });
  });

  it('holds at most maxPendingLookups lookups; every request beyond is refused at once, without reaching the backend', async () => {
    vi.useFakeTimers();
    const backend = slowBackend();
    const service = serviceOver(backend, { verifyTimeoutMs: 1_000, maxPendingLookups: 100 });
    const unknown = Array.from({ length: 50 }, () => service.format.generate());
    backend.hold();

    const outcomes = watch(service, Array.from({ length: 5_000 }, (_, i) => unknown[i % unknown.length]!));
    // No time passes: the 4,900 beyond the bound are answered, the 100 admitted are not.
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.lookups).toBe(100);
    expect(backend.pending).toBe(100);
    const immediate = outcomes.filter((o) => o.result !== null);
    expect(immediate).toHaveLength(4_900);
    expect(immediate.every((o) => !o.result!.ok && o.result!.code === 'backend_unavailable')).toBe(true);
    expect((immediate[0]!.result as { error: Error }).error.message).toMatch(/100 API key lookups are pending/);

    // The 100 admitted wait for the timeout, and get the same answer then.
    await vi.advanceTimersByTimeAsync(999);
    expect(outcomes.filter((o) => o.result === null)).toHaveLength(100);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcomes.every((o) => o.result !== null && !o.result.ok && o.result.code === 'backend_unavailable')).toBe(true);
  });

  it('takes new lookups again as soon as the backend settles the pending ones', async () => {
    const backend = slowBackend();
    const service = serviceOver(backend, { verifyTimeoutMs: 50, maxPendingLookups: 10 });
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'k' });
    backend.hold();
    await burst(service, Array.from({ length: 30 }, () => key));
    expect(backend.pending).toBe(10);
    // Saturated: refused without a lookup.
    expect(await service.authenticate(key)).toMatchObject({ ok: false, code: 'backend_unavailable' });
    expect(backend.lookups).toBe(10);

    backend.release();
    await new Promise((resolve) => setImmediate(resolve));
    const back = await service.authenticate(key);
    expect(back).toMatchObject({ ok: true, apiKey: { id: apiKey.id } });
    expect(backend.lookups).toBe(11);
    // And the bound is whole again: ten more can be held.
    backend.hold();
    await burst(service, Array.from({ length: 15 }, () => key));
    expect(backend.pending).toBe(10);
  });

  it('counts a lookup that throws synchronously as settled', async () => {
    const backend = slowBackend();
    const service = serviceOver(backend, { verifyTimeoutMs: 50, maxPendingLookups: 2 });
    const { key } = await service.issue({ ownerId: 'o', name: 'k' });
    const original = backend.getByHash.bind(backend);
    backend.getByHash = () => {
      throw new Error('driver bug');
    };
    for (let i = 0; i < 5; i++) expect(await service.authenticate(key)).toMatchObject({ ok: false, code: 'backend_unavailable' });
    backend.getByHash = original;
    expect(await service.authenticate(key)).toMatchObject({ ok: true });
  });

  it('still answers keys held by the L1 while the store behind it is saturated', async () => {
    const backend = slowBackend();
    const cached = new CachedBackend(backend, { ttl: 60_000 });
    const service = serviceOver(cached, { verifyTimeoutMs: 50, maxPendingLookups: 5 });
    const { key } = await service.issue({ ownerId: 'o', name: 'warm' });
    expect(await service.authenticate(key)).toMatchObject({ ok: true });
    backend.hold();
    await burst(service, Array.from({ length: 20 }, () => service.format.generate()));
    expect(backend.pending).toBe(5);
    expect(await service.authenticate(key)).toMatchObject({ ok: true });
  });

  it('keeps the heap flat: 20,000 more requests against a hung backend retain nothing more', async () => {
    const gc = exposeGc();
    const rounds = 6;
    const perRound = 5_000;

    /**
     * Heap growth per request from the end of the second round (the first fills the
     * bound; both warm V8's own caches) to the end of the last, against a store that hangs.
     */
    async function growthPerRequest(maxPendingLookups: number) {
      const backend = slowBackend();
      const service = serviceOver(backend, { verifyTimeoutMs: 20, maxPendingLookups });
      const keys = Array.from({ length: 100 }, () => service.format.generate());
      backend.hold();
      let afterWarmUp = 0;
      for (let round = 0; round < rounds; round++) {
        const outcomes = await burst(service, Array.from({ length: perRound }, (_, i) => keys[i % keys.length]!));
        expect(outcomes.every((o) => !o.result.ok && o.result.code === 'backend_unavailable')).toBe(true);
        if (round === 1) afterWarmUp = retainedHeap(gc);
      }
      const growth = (retainedHeap(gc) - afterWarmUp) / ((rounds - 2) * perRound);
      const pending = backend.pending;
      backend.release();
      return { growth, pending };
    }

    const bounded = await growthPerRequest(1_000);
    const unbounded = await growthPerRequest(0);
    const measured =
      `heap growth per request against a hung backend, over ${(rounds - 2) * perRound} requests: ` +
      `maxPendingLookups 1000: ${bounded.growth.toFixed(1)} B; unbounded: ${unbounded.growth.toFixed(1)} B`;
    expect(bounded.pending).toBe(1_000);
    expect(unbounded.pending).toBe(rounds * perRound);
    // The measurement sees a pile-up when there is one (each parked lookup holds ~1.7 kB) ...
    expect(unbounded.growth, measured).toBeGreaterThan(500);
    // ... and with the bound the heap stays where the warm-up left it (under 1 MB for
    // 20,000 requests is measurement noise; the pile-up would be 35 MB).
    expect(bounded.growth, measured).toBeLessThan(50);
  });
});

describe('a lookup answered after verifyTimeoutMs', () => {
  it('stays a 503: the late record is not judged and does not count as a use of the key', async () => {
    const backend = slowBackend();
    const service = serviceOver(backend, { verifyTimeoutMs: 50, trackUsage: true, usageIntervalMs: 0 });
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'k' });
    const recordUsage = vi.spyOn(backend, 'recordUsage');
    backend.hold();
    const [outcome] = await burst(service, [key]);
    expect(outcome!.result).toMatchObject({ ok: false, code: 'backend_unavailable' });
    backend.release();
    // A barrier, not a wait: every microtask the release set off (the late answer and
    // whatever the service chains on it) has run before the next macrotask.
    await new Promise((resolve) => setImmediate(resolve));
    await service.flushUsage();
    expect(recordUsage).not.toHaveBeenCalled();
    expect((await service.get(apiKey.id))?.lastUsedAt).toBeNull();
    // The store answers again: the same key is accepted and its use recorded.
    expect((await service.authenticate(key)).ok).toBe(true);
    await service.flushUsage();
    expect(recordUsage).toHaveBeenCalledTimes(1);
  });
});

describe('verifyTimeoutMs under many concurrent lookups', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps one timer for all pending lookups, and fails each at its own deadline', async () => {
    vi.useFakeTimers();
    const backend = slowBackend();
    const service = serviceOver(backend, { verifyTimeoutMs: 100, maxPendingLookups: 0 });
    const keys = Array.from({ length: 500 }, () => service.format.generate());
    backend.hold();
    const outcomes: Array<string | null> = [];
    const track = (key: string) => {
      const index = outcomes.push(null) - 1;
      void service.authenticate(key).then((result) => (outcomes[index] = result.ok ? 'ok' : result.code));
    };
    for (const key of keys.slice(0, 250)) track(key);
    await vi.advanceTimersByTimeAsync(50);
    for (const key of keys.slice(250)) track(key);
    expect(backend.pending).toBe(500);
    expect(vi.getTimerCount()).toBe(1);

    await vi.advanceTimersByTimeAsync(50); // t = 100: the first 250 are due
    expect(outcomes.slice(0, 250).every((o) => o === 'backend_unavailable')).toBe(true);
    expect(outcomes.slice(250).every((o) => o === null)).toBe(true);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(50); // t = 150: the rest
    expect(outcomes.every((o) => o === 'backend_unavailable')).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});
