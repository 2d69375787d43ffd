import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_USAGE_RECORDER_LIMITS, UsageRecorder } from '../../lib/usage/usage-recorder.js';
import { makeService } from '../fixtures/service.js';
import { SlowUsageBackend } from '../fixtures/slow-usage.backend.js';

const t0 = new Date('2030-01-01T00:00:00Z').getTime();
const nextTick = () => new Promise((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** `count` keys stored in `backend`, issued without usage tracking; their ids in order. */
async function storeKeys(backend: SlowUsageBackend, count: number): Promise<string[]> {
  const { service } = makeService({ backend, trackUsage: false });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await service.issue({ ownerId: 'o', name: `k${i}` })).apiKey.id);
  return ids;
}

describe('usage writes with usageIntervalMs: 0 and a slow store stay bounded', () => {
  it('10,000 uses of 1,000 keys while the store hangs: in-flight and waiting writes are bounded; each key gets its last use once it answers', async () => {
    const backend = new SlowUsageBackend();
    const ids = await storeKeys(backend, 1_000);
    const recorder = new UsageRecorder(backend, 0, true, null, { maxWritesInFlight: 100 });
    backend.hold();

    const use = (round: number) => {
      ids.forEach((id, i) => recorder.record(id, null, t0 + round * 1_000 + i));
    };
    for (let round = 0; round < 10; round++) {
      use(round);
      await nextTick(); // as a server would between requests
    }
    expect(backend.writesInFlight).toBe(100);
    expect(recorder.writesInFlight).toBe(100);
    // One waiting update per key, not one per use: 900 queued, 100 behind their key's write.
    expect(recorder.pendingWrites).toBe(1_000);

    // Ten times as many uses change nothing in what is held.
    for (let round = 10; round < 100; round++) {
      use(round);
      await nextTick();
    }
    expect(backend.writes).toBe(100);
    expect(recorder.pendingWrites).toBe(1_000);

    backend.release(200);
    await recorder.flush();
    expect(backend.maxWritesInFlight).toBe(100);
    // Each key once, plus a second write for the 100 whose first carried an older use.
    expect(backend.writes).toBe(1_100);
    expect(recorder.writesInFlight).toBe(0);
    expect(recorder.pendingWrites).toBe(0);
    for (const [i, id] of ids.entries()) {
      expect((await backend.getById(id))?.lastUsedAt).toEqual(new Date(t0 + 99 * 1_000 + i));
    }
  });

  it('through the service with the default bounds: verifications resolve while writes hang, and at most 16 reach the store', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(t0);
    const backend = new SlowUsageBackend();
    const { service } = makeService({ backend, usageIntervalMs: 0 });
    const keys = [];
    for (let i = 0; i < 1_000; i++) keys.push(await service.issue({ ownerId: 'o', name: `k${i}` }));
    backend.hold();

    for (let round = 0; round < 10; round++) {
      vi.setSystemTime(t0 + 1_000 * (round + 1));
      // Resolving at all proves they do not wait: the writes they cause never answer.
      const results = await Promise.all(keys.map(({ key }) => service.verify(key)));
      expect(results.every((r) => r !== null)).toBe(true);
      await nextTick();
    }
    expect(DEFAULT_USAGE_RECORDER_LIMITS.maxWritesInFlight).toBe(16);
    expect(backend.writesInFlight).toBe(16);
    expect(backend.writes).toBe(16);

    backend.release();
    await service.flushUsage();
    expect(backend.maxWritesInFlight).toBe(16);
    for (const { apiKey } of keys) {
      expect((await service.get(apiKey.id))?.lastUsedAt).toEqual(new Date(t0 + 10_000));
    }
  });

  it('past maxQueuedWrites drops the oldest waiting updates, warns once per outage, and writes a dropped key on its next use', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const backend = new SlowUsageBackend();
    const ids = await storeKeys(backend, 1_000);
    // A whole-minute interval: a dropped key would otherwise stay unwritten for a minute.
    const recorder = new UsageRecorder(backend, 60_000, true, null, { maxWritesInFlight: 10, maxQueuedWrites: 100 });
    backend.hold();

    ids.forEach((id) => recorder.record(id, null, t0));
    expect(recorder.pendingWrites).toBe(100);
    await nextTick();
    expect(recorder.writesInFlight).toBe(10);
    expect(recorder.pendingWrites).toBe(90);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toContain('not keeping up');

    // Dropped keys were forgotten, so their next uses queue again: still within the bound, no second warning.
    ids.forEach((id) => recorder.record(id, null, t0 + 1));
    expect(recorder.writesInFlight).toBe(10);
    expect(recorder.pendingWrites).toBe(100);
    expect(warn).toHaveBeenCalledTimes(1);

    backend.release();
    await recorder.flush();
    // Exactly what the bounds held: 10 in flight and 100 waiting.
    expect(backend.writes).toBe(110);
    expect(log.mock.calls.some(([message]) => String(message).includes('caught up'))).toBe(true);

    // A dropped key is forgotten, so its next use is written though the interval has not passed.
    const dropped = ids[500]!;
    expect((await backend.getById(dropped))?.lastUsedAt).toBeNull();
    recorder.record(dropped, null, t0 + 2);
    await recorder.flush();
    expect((await backend.getById(dropped))?.lastUsedAt).toEqual(new Date(t0 + 2));

    // A new outage warns again, once.
    backend.hold();
    ids.slice(0, 300).forEach((id, i) => recorder.record(id, null, t0 + 60_000 + i));
    expect(warn).toHaveBeenCalledTimes(2);
    backend.release();
    await recorder.flush();
  });
});
