import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NoopUsageWriteCoordinator, type UsageWriteCoordinator } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import { InstrumentedBackend } from '../fixtures/instrumented.backend.js';
import { makeService } from '../fixtures/service.js';

const t0 = new Date('2030-01-01T00:00:00Z').getTime();
const nextTick = () => new Promise((resolve) => setImmediate(resolve));

/** A coordinator for one process that behaves like the shared Redis one, with scripted failures. */
class ScriptedCoordinator implements UsageWriteCoordinator {
  readonly claims: Array<{ id: string; intervalMs: number }> = [];
  readonly releases: string[] = [];
  /** What the next claims answer; `'throw'` rejects. */
  answer: boolean | number | 'throw' = true;

  async claim(id: string, intervalMs: number): Promise<boolean | number> {
    this.claims.push({ id, intervalMs });
    if (this.answer === 'throw') throw new Error('simulated coordinator outage');
    return this.answer;
  }

  async release(id: string): Promise<void> {
    this.releases.push(id);
  }
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('usage writes through a UsageWriteCoordinator', () => {
  it('asks the coordinator once per key per interval, with the interval, and writes only what it grants', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(t0);
    const coordinator = new ScriptedCoordinator();
    const { service, backend } = makeService({ usageIntervalMs: 60_000, usageCoordinator: coordinator });
    const granted = await service.issue({ ownerId: 'o', name: 'granted' });
    const refused = await service.issue({ ownerId: 'o', name: 'refused' });

    await Promise.all(Array.from({ length: 200 }, () => service.verify(granted.key)));
    await service.flushUsage();
    coordinator.answer = false; // another instance holds this interval for the second key
    await Promise.all(Array.from({ length: 200 }, () => service.verify(refused.key)));
    await service.flushUsage();

    expect(coordinator.claims).toEqual([
      { id: granted.apiKey.id, intervalMs: 60_000 },
      { id: refused.apiKey.id, intervalMs: 60_000 },
    ]);
    expect(backend.usage).toEqual([{ id: granted.apiKey.id, usedAt: new Date(t0) }]);

    // A refused claim keeps this instance quiet for the rest of the interval: no second question.
    vi.setSystemTime(t0 + 59_999);
    await service.verify(refused.key);
    await service.flushUsage();
    expect(coordinator.claims).toHaveLength(2);

    // The next interval asks again, and a granted claim writes.
    coordinator.answer = true;
    vi.setSystemTime(t0 + 60_000);
    await service.verify(refused.key);
    await service.flushUsage();
    expect(coordinator.claims).toHaveLength(3);
    expect(backend.usage.at(-1)).toEqual({ id: refused.apiKey.id, usedAt: new Date(t0 + 60_000) });
  });

  it('asks again when the other instance\'s claim ends, not a whole interval after it asked', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(t0);
    const coordinator = new ScriptedCoordinator();
    const { service, backend } = makeService({ usageIntervalMs: 60_000, usageCoordinator: coordinator });
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });

    coordinator.answer = 20_000; // the holder's claim ends at t0 + 20 s
    await service.verify(key);
    await service.flushUsage();
    vi.setSystemTime(t0 + 19_999);
    await service.verify(key);
    await service.flushUsage();
    expect(coordinator.claims).toHaveLength(1);

    coordinator.answer = true;
    vi.setSystemTime(t0 + 20_000);
    await service.verify(key);
    await service.flushUsage();
    expect(coordinator.claims).toHaveLength(2);
    expect(backend.usage).toEqual([{ id: apiKey.id, usedAt: new Date(t0 + 20_000) }]);
  });

  it('writes anyway when the coordinator fails, warns once, and says when it works again', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const coordinator = new ScriptedCoordinator();
    coordinator.answer = 'throw';
    const { service, backend } = makeService({ usageIntervalMs: 60_000, usageCoordinator: coordinator });
    const keys = await Promise.all(Array.from({ length: 3 }, (_, i) => service.issue({ ownerId: 'o', name: `k${i}` })));

    for (const { key } of keys) expect(await service.verify(key)).not.toBeNull();
    await nextTick();
    await expect(service.flushUsage()).resolves.toBeUndefined();
    expect(backend.calls.recordUsage).toBe(3); // no write lost to the outage
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toContain('simulated coordinator outage');
    for (const { key } of keys) expect(String(warn.mock.calls[0]![0])).not.toContain(key);

    coordinator.answer = true;
    const another = await service.issue({ ownerId: 'o', name: 'later' });
    await service.verify(another.key);
    await service.flushUsage();
    expect(log.mock.calls.map((c) => String(c[0]))).toContain('Coordinating key usage writes across instances works again.');
    expect(backend.calls.recordUsage).toBe(4);
  });

  it('gives the claim back when the write fails, so the next use can write', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const coordinator = new ScriptedCoordinator();
    const { service, backend } = makeService({ usageIntervalMs: 60_000, usageCoordinator: coordinator });
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    backend.faults.recordUsage = 'throw';
    await service.verify(key);
    await service.flushUsage();
    await nextTick();
    expect(coordinator.releases).toEqual([apiKey.id]);

    delete backend.faults.recordUsage;
    await service.verify(key);
    await service.flushUsage();
    expect(coordinator.claims).toHaveLength(2);
    expect((await service.get(apiKey.id))?.lastUsedAt).toBeInstanceOf(Date);
  });

  it('a coordinator whose release throws does not make the flush reject', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const coordinator: UsageWriteCoordinator = {
      claim: async () => true,
      release: () => {
        throw new Error('release blew up synchronously');
      },
    };
    const { service, backend } = makeService({ usageIntervalMs: 60_000, usageCoordinator: coordinator });
    const { key } = await service.issue({ ownerId: 'o', name: 'n' });
    backend.faults.recordUsage = 'throw';
    await service.verify(key);
    await expect(service.flushUsage()).resolves.toBeUndefined();
    await nextTick();
  });

  it('does not consult the coordinator with an interval of 0 (every use is written)', async () => {
    const coordinator = new ScriptedCoordinator();
    coordinator.answer = false;
    const { service, backend } = makeService({ usageIntervalMs: 0, usageCoordinator: coordinator });
    const { key } = await service.issue({ ownerId: 'o', name: 'n' });
    for (let i = 0; i < 3; i++) {
      await service.verify(key);
      await nextTick();
      await service.flushUsage();
    }
    expect(coordinator.claims).toHaveLength(0);
    expect(backend.calls.recordUsage).toBe(3);
  });

  it('defaults to the no-op coordinator, which lets every instance write', async () => {
    const resolved = resolveApiAuthOptions({ backend: new InstrumentedBackend() });
    expect(resolved.usageCoordinator).toBeInstanceOf(NoopUsageWriteCoordinator);
    expect(await resolved.usageCoordinator.claim('id', 1_000)).toBe(true);
  });

  it('refuses a usageCoordinator without a claim method, naming the option', () => {
    expect(() => resolveApiAuthOptions({ usageCoordinator: {} as UsageWriteCoordinator })).toThrow(/"usageCoordinator".*claim/);
  });
});
