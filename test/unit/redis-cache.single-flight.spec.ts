import { describe, expect, it } from 'vitest';
import { SingleFlight } from '../../lib/internal/single-flight.js';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('SingleFlight (the miss path of RedisCacheBackend)', () => {
  it('runs the work once for concurrent callers with the same key and token', async () => {
    const flights = new SingleFlight<number>();
    const gate = deferred<number>();
    let runs = 0;
    const work = () => {
      runs++;
      return gate.promise;
    };
    const callers = Array.from({ length: 50 }, () => flights.run('k', 't', work));
    expect(flights.size).toBe(1);
    gate.resolve(7);
    expect(await Promise.all(callers)).toEqual(Array(50).fill(7));
    expect(runs).toBe(1);
    expect(flights.size).toBe(0);
  });

  it('does not let a caller with another token join, and keeps the newer flight when the older ends', async () => {
    const flights = new SingleFlight<string>();
    const older = deferred<string>();
    const newer = deferred<string>();
    const first = flights.run('k', 'g1', () => older.promise);
    const second = flights.run('k', 'g2', () => newer.promise);
    older.resolve('old');
    expect(await first).toBe('old');
    // The older flight's end must not remove the newer one.
    const third = flights.run('k', 'g2', () => Promise.resolve('should not run'));
    newer.resolve('new');
    expect(await second).toBe('new');
    expect(await third).toBe('new');
  });

  it('after forget, a new caller starts fresh while earlier callers still get their answer', async () => {
    const flights = new SingleFlight<string>();
    const before = deferred<string>();
    const early = flights.run('k', 't', () => before.promise);
    flights.forget('k');
    const late = flights.run('k', 't', async () => 'fresh');
    before.resolve('stale');
    expect(await early).toBe('stale');
    expect(await late).toBe('fresh');
  });

  it('shares a failure with the callers of that flight only, then forgets it', async () => {
    const flights = new SingleFlight<string>();
    const gate = deferred<string>();
    const a = flights.run('k', 't', () => gate.promise);
    const b = flights.run('k', 't', () => gate.promise);
    gate.reject(new Error('primary down'));
    await expect(a).rejects.toThrow('primary down');
    await expect(b).rejects.toThrow('primary down');
    expect(await flights.run('k', 't', async () => 'recovered')).toBe('recovered');
  });
});
