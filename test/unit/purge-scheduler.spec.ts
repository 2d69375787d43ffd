import { ConsoleLogger, Logger } from '@nestjs/common';
import { MemoryBackend, type UsageWriteCoordinator } from 'nestjs-api-auth';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiKeyService } from '../../lib/api-key.service.js';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { PurgeScheduler } from '../../lib/purge/purge.scheduler.js';
import { CapturingLogger } from '../fixtures/log-capture.js';

const INTERVAL = 60_000;
const START = 1_000 * INTERVAL;

describe('PurgeScheduler', () => {
  let logs: CapturingLogger;
  beforeEach(() => {
    logs = new CapturingLogger();
    Logger.overrideLogger(logs);
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(START);
  });
  afterEach(() => {
    vi.useRealTimers();
    Logger.overrideLogger(new ConsoleLogger());
  });

  function scheduler(coordinator: UsageWriteCoordinator, backend = new MemoryBackend()) {
    const options = resolveApiAuthOptions({ backend, usageCoordinator: coordinator, purge: { intervalMs: INTERVAL, expiredFor: 0 } });
    return { scheduler: new PurgeScheduler(new ApiKeyService(options), options), backend };
  }

  it('claims each interval by its number, for two intervals, and purges only the intervals it won', async () => {
    const claims: Array<[string, number]> = [];
    const coordinator: UsageWriteCoordinator = {
      claim: async (id, ms) => {
        claims.push([id, ms]);
        return claims.length !== 2;
      },
    };
    const { scheduler: s, backend } = scheduler(coordinator);
    s.start();
    s.start();
    const left: number[] = [];
    for (let i = 0; i < 3; i++) {
      await backend.create(makeApiKeyRecord({ expiresAt: new Date(Date.now() - 1) }));
      await vi.advanceTimersByTimeAsync(INTERVAL);
      await s.whenIdle();
      left.push(backend.size);
    }
    // One timer despite two starts; each claim names its interval and outlives it.
    expect(claims).toEqual([1001, 1002, 1003].map((slot) => [`purge:${INTERVAL}:${slot}`, 2 * INTERVAL]));
    // The second interval went to another instance: that key waits for the third.
    expect(left).toEqual([0, 1, 0]);
    await s.stop();
  });

  it('skips an interval whose claim fails, warns once, and says when purging works again', async () => {
    let failing = 2;
    const coordinator: UsageWriteCoordinator = {
      claim: async () => {
        if (failing-- > 0) throw new Error('Redis is not connected');
        return true;
      },
    };
    const { scheduler: s, backend } = scheduler(coordinator);
    await backend.create(makeApiKeyRecord({ expiresAt: new Date(Date.now() - 1) }));
    s.start();
    for (let i = 0; i < 2; i++) {
      await vi.advanceTimersByTimeAsync(INTERVAL);
      await s.whenIdle();
    }
    expect(backend.size).toBe(1);
    expect(logs.lines).toEqual(['[warn] Could not purge API keys; will try again next interval: Redis is not connected ApiAuth']);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    await s.whenIdle();
    expect(backend.size).toBe(0);
    expect(logs.lines.at(-1)).toBe('[log] Purging API keys works again. ApiAuth');
    await s.stop();
  });

  it('does nothing without the purge option', async () => {
    const backend = new MemoryBackend();
    const options = resolveApiAuthOptions({ backend });
    const s = new PurgeScheduler(new ApiKeyService(options), options);
    s.onApplicationBootstrap();
    await backend.create(makeApiKeyRecord({ expiresAt: new Date(Date.now() - 1), revokedAt: new Date(Date.now() - 1) }));
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(backend.size).toBe(1);
    await s.onModuleDestroy();
  });
});
