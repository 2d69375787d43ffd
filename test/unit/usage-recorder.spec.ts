import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeService } from '../fixtures/service.js';
import { track } from '../fixtures/settled.js';

const t0 = new Date('2030-01-01T00:00:00Z').getTime();
const nextTick = () => new Promise((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('lastUsedAt recording', () => {
  it('writes at most once per interval under 1,000 concurrent verifications', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(t0);
    const { service, backend } = makeService({ usageIntervalMs: 60_000 });
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });

    const results = await Promise.all(Array.from({ length: 1_000 }, () => service.verify(key)));
    expect(results.every((r) => r?.id === apiKey.id)).toBe(true);
    await service.flushUsage();
    expect(backend.calls.recordUsage).toBe(1);
    expect(backend.calls.getByHash).toBe(1_000);
    expect((await service.get(apiKey.id))?.lastUsedAt).toEqual(new Date(t0));
  });

  it('writes at most once per interval under 1,000 sequential verifications spread over the interval', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(t0);
    const { service, backend } = makeService({ usageIntervalMs: 60_000 });
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });

    for (let i = 0; i < 1_000; i++) {
      vi.setSystemTime(t0 + i * 59); // the last one at t0 + 58,941 ms: still inside the interval
      expect(await service.verify(key)).not.toBeNull();
      if (i % 100 === 0) await nextTick(); // let scheduled flushes run, as a server would
    }
    await service.flushUsage();
    expect(backend.calls.recordUsage).toBe(1);
    expect(backend.usage).toEqual([{ id: apiKey.id, usedAt: new Date(t0) }]);

    // Once the interval has passed, the next use is written again, exactly once.
    vi.setSystemTime(t0 + 60_000);
    await Promise.all(Array.from({ length: 100 }, () => service.verify(key)));
    await service.flushUsage();
    expect(backend.calls.recordUsage).toBe(2);
    expect((await service.get(apiKey.id))?.lastUsedAt).toEqual(new Date(t0 + 60_000));

    vi.setSystemTime(t0 + 119_999);
    await service.verify(key);
    await service.flushUsage();
    expect(backend.calls.recordUsage).toBe(2);
  });

  it('records each key separately', async () => {
    const { service, backend } = makeService();
    const keys = await Promise.all(Array.from({ length: 5 }, (_, i) => service.issue({ ownerId: 'o', name: `k${i}` })));
    for (let round = 0; round < 20; round++) await Promise.all(keys.map(({ key }) => service.verify(key)));
    await service.flushUsage();
    expect(backend.calls.recordUsage).toBe(5);
    expect(new Set(backend.usage.map((u) => u.id))).toEqual(new Set(keys.map((k) => k.apiKey.id)));
  });

  it('does not write on the request path: verify resolves before the write is even attempted', async () => {
    const { service, backend } = makeService();
    const { key } = await service.issue({ ownerId: 'o', name: 'n' });
    expect(await service.verify(key)).not.toBeNull();
    expect(backend.calls.recordUsage).toBe(0);
    await nextTick();
    await service.flushUsage();
    expect(backend.calls.recordUsage).toBe(1);
  });

  it('skips the write when the stored lastUsedAt is recent (another instance wrote it)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(t0);
    const { service, backend } = makeService({ usageIntervalMs: 60_000 });
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    await backend.recordUsage(apiKey.id, new Date(t0 - 1_000), new Date(t0 - 61_000));
    backend.calls.recordUsage = 0;
    await service.verify(key);
    await service.flushUsage();
    expect(backend.calls.recordUsage).toBe(0);
  });

  it('writes on every use with an interval of 0, and never with trackUsage: false', async () => {
    const eager = makeService({ usageIntervalMs: 0 });
    const issued = await eager.service.issue({ ownerId: 'o', name: 'n' });
    for (let i = 0; i < 3; i++) {
      await eager.service.verify(issued.key);
      await nextTick();
      await eager.service.flushUsage();
    }
    expect(eager.backend.calls.recordUsage).toBe(3);

    const off = makeService({ trackUsage: false });
    const offKey = await off.service.issue({ ownerId: 'o', name: 'n' });
    await Promise.all(Array.from({ length: 50 }, () => off.service.verify(offKey.key)));
    await nextTick();
    await off.service.flushUsage();
    expect(off.backend.calls.recordUsage).toBe(0);
    expect((await off.service.get(offKey.apiKey.id))?.lastUsedAt).toBeNull();
  });

  it('never fails a verification when recording throws, warns once, and retries on the next use', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const { service, backend } = makeService({ usageIntervalMs: 60_000 });
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    backend.faults.recordUsage = 'throw';

    for (let i = 0; i < 5; i++) {
      expect(await service.verify(key)).toMatchObject({ id: apiKey.id });
      await nextTick();
      await expect(service.flushUsage()).resolves.toBeUndefined();
    }
    // A failed write is forgotten, so each later use tries again instead of waiting an interval.
    expect(backend.calls.recordUsage).toBe(5);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toContain('simulated outage in recordUsage');
    expect(String(warn.mock.calls[0]![0])).not.toContain(key);

    delete backend.faults.recordUsage;
    await service.verify(key);
    await nextTick();
    await service.flushUsage();
    expect((await service.get(apiKey.id))?.lastUsedAt).toBeInstanceOf(Date);
  });

  it('never delays a verification when recording hangs, and shutdown does not wait for it forever', async () => {
    // Fake timers: a verification answered before any time passes waited for no write, and
    // shutdown is seen to wait for the hung write exactly until its bound.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { service, backend } = makeService({ usageIntervalMs: 0, verifyTimeoutMs: 200 });
    const { key } = await service.issue({ ownerId: 'o', name: 'n' });
    backend.faults.recordUsage = 'hang';
    for (let i = 0; i < 3; i++) {
      const verdict = track(service.verify(key));
      await vi.advanceTimersByTimeAsync(0);
      expect(verdict.settled).toBe(true);
      expect(verdict.value).not.toBeNull();
      await nextTick();
    }
    expect(backend.calls.recordUsage).toBeGreaterThanOrEqual(1);
    const shutdown = track(service.onApplicationShutdown());
    await vi.advanceTimersByTimeAsync(199);
    expect(shutdown.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(shutdown.settled).toBe(true);
  });

  it('with verifyTimeoutMs 0, shutdown still gives a hung usage write 5 s, not forever', async () => {
    const { service, backend } = makeService({ usageIntervalMs: 0, verifyTimeoutMs: 0 });
    const { key } = await service.issue({ ownerId: 'o', name: 'n' });
    backend.faults.recordUsage = 'hang';
    expect(await service.verify(key)).not.toBeNull();
    await nextTick();
    expect(backend.calls.recordUsage).toBeGreaterThanOrEqual(1);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let done = false;
    const shutdown = service.onApplicationShutdown().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(4_999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await shutdown;
    expect(done).toBe(true);
  });
});
