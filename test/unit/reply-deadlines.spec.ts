import { afterEach, describe, expect, it, vi } from 'vitest';
import { callThen, ReplyDeadlineExceeded, ReplyDeadlines } from '../../lib/internal/reply-deadlines.js';

afterEach(() => {
  vi.useRealTimers();
});

/** Follows a promise from the start: `outcome` is 'pending', `{ value }` or `{ error }`. */
function watch<T>(promise: Promise<T>): { outcome: unknown } {
  const watched: { outcome: unknown } = { outcome: 'pending' };
  promise.then(
    (value) => (watched.outcome = { value }),
    (error: unknown) => (watched.outcome = { error }),
  );
  return watched;
}

describe('ReplyDeadlines', () => {
  it('passes a reply that comes in time through, and a failure untouched', async () => {
    vi.useFakeTimers();
    const deadlines = new ReplyDeadlines(100);
    await expect(deadlines.track(Promise.resolve('ok'))).resolves.toBe('ok');
    const failure = new Error('refused');
    await expect(deadlines.track(Promise.reject(failure))).rejects.toBe(failure);
    expect(deadlines.size).toBe(0);
  });

  it('fails a hung call at its deadline exactly, not before', async () => {
    vi.useFakeTimers();
    const deadlines = new ReplyDeadlines(100);
    const call = watch(deadlines.track(new Promise<never>(() => undefined)));
    await vi.advanceTimersByTimeAsync(99);
    expect(call.outcome).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    const outcome = call.outcome as { error: unknown };
    expect(outcome.error).toBeInstanceOf(ReplyDeadlineExceeded);
    expect((outcome.error as ReplyDeadlineExceeded).ms).toBe(100);
    expect(deadlines.size).toBe(0);
  });

  it('fails calls started at different times each at its own deadline, with one timer for all', async () => {
    vi.useFakeTimers();
    const deadlines = new ReplyDeadlines(100);
    const hung = () => watch(deadlines.track(new Promise<never>(() => undefined)));
    const first = hung();
    await vi.advanceTimersByTimeAsync(30);
    const second = hung();
    const answered = watch(deadlines.track(new Promise((resolve) => setTimeout(() => resolve('late but in time'), 90))));
    await vi.advanceTimersByTimeAsync(30);
    const third = hung();
    expect(vi.getTimerCount()).toBe(2); // the deadline timer and the reply's own
    expect(deadlines.size).toBe(4);

    await vi.advanceTimersByTimeAsync(40); // t = 100
    expect(first.outcome).toMatchObject({ error: expect.any(ReplyDeadlineExceeded) });
    expect(second.outcome).toBe('pending');
    await vi.advanceTimersByTimeAsync(20); // t = 120: the reply came at t = 120
    expect(answered.outcome).toEqual({ value: 'late but in time' });
    await vi.advanceTimersByTimeAsync(9); // t = 129
    expect(second.outcome).toBe('pending');
    await vi.advanceTimersByTimeAsync(1); // t = 130
    expect(second.outcome).toMatchObject({ error: expect.any(ReplyDeadlineExceeded) });
    expect(third.outcome).toBe('pending');
    await vi.advanceTimersByTimeAsync(30); // t = 160
    expect(third.outcome).toMatchObject({ error: expect.any(ReplyDeadlineExceeded) });
    // Nothing pending, nothing armed: an idle process keeps no timer.
    expect(deadlines.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects with the error the owner chose', async () => {
    vi.useFakeTimers();
    const deadlines = new ReplyDeadlines(50, (ms) => new RangeError(`nothing in ${ms} ms`));
    const call = watch(deadlines.track(new Promise<never>(() => undefined)));
    await vi.advanceTimersByTimeAsync(50);
    expect(call.outcome).toEqual({ error: new RangeError('nothing in 50 ms') });
  });

  it('start/clear: a cleared deadline never fires, an uncleared one fires once', async () => {
    vi.useFakeTimers();
    const deadlines = new ReplyDeadlines(100);
    const cleared = vi.fn();
    const fired = vi.fn();
    const a = deadlines.start(cleared);
    deadlines.start(fired);
    deadlines.clear(a);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(cleared).not.toHaveBeenCalled();
    expect(fired).toHaveBeenCalledTimes(1);
    expect(fired.mock.calls[0]![0]).toBeInstanceOf(ReplyDeadlineExceeded);
  });

  it('clears in any order, twice without harm, and fires exactly the deadlines left', async () => {
    vi.useFakeTimers();
    const deadlines = new ReplyDeadlines(100);
    const fired: number[] = [];
    const started = [0, 1, 2, 3, 4].map((i) => deadlines.start(() => fired.push(i)));
    deadlines.clear(started[1]!); // middle
    deadlines.clear(started[0]!); // oldest
    deadlines.clear(started[4]!); // newest
    deadlines.clear(started[1]!); // again
    expect(deadlines.size).toBe(2);
    const later = deadlines.start(() => fired.push(5));
    await vi.advanceTimersByTimeAsync(100);
    expect(fired).toEqual([2, 3, 5]);
    expect(deadlines.size).toBe(0);
    deadlines.clear(started[2]!); // after it fired: nothing happens
    deadlines.clear(later);
    expect(deadlines.size).toBe(0);
  });

  it('does not keep the process alive', () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const deadlines = new ReplyDeadlines(60_000);
    deadlines.start(() => undefined);
    const timer = setTimeoutSpy.mock.results[0]!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    clearTimeout(timer);
    setTimeoutSpy.mockRestore();
  });
});

describe('callThen', () => {
  /** Runs `reply` through callThen and records every callback, in order. */
  function follow(reply: () => Promise<unknown>, deadlines: ReplyDeadlines | undefined, decode: (value: unknown) => unknown = (value) => value) {
    const calls: Array<[string, unknown]> = [];
    callThen(
      reply,
      deadlines,
      (error) => ({ mapped: error }),
      decode,
      (value) => calls.push(['value', value]),
      (error) => calls.push(['error', error]),
    );
    return calls;
  }

  it('passes a reply in time to onValue through decode, once, with or without deadlines', async () => {
    vi.useFakeTimers();
    const deadlines = new ReplyDeadlines(100);
    for (const d of [deadlines, undefined]) {
      const calls = follow(() => Promise.resolve(2), d, (value) => (value as number) * 10);
      await vi.advanceTimersByTimeAsync(200);
      expect(calls).toEqual([['value', 20]]);
    }
    expect(deadlines.size).toBe(0);
  });

  it('maps a rejected reply and a call that throws; hands what decode throws on as it is', async () => {
    vi.useFakeTimers();
    const refused = new Error('refused');
    const thrown = new Error('thrown');
    const broken = new Error('decode');
    expect(
      follow(() => {
        throw thrown;
      }, new ReplyDeadlines(100)),
    ).toEqual([['error', { mapped: thrown }]]);
    const rejected = follow(() => Promise.reject(refused), new ReplyDeadlines(100));
    const undecodable = follow(() => Promise.resolve('x'), new ReplyDeadlines(100), () => {
      throw broken;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(rejected).toEqual([['error', { mapped: refused }]]);
    expect(undecodable).toEqual([['error', broken]]);
  });

  it('fails a hung call at its deadline exactly, and drops the reply that comes after it', async () => {
    vi.useFakeTimers();
    const deadlines = new ReplyDeadlines(100);
    let answer!: (value: unknown) => void;
    const calls = follow(() => new Promise((resolve) => (answer = resolve)), deadlines);
    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([['error', { mapped: expect.any(ReplyDeadlineExceeded) }]]);
    answer('late');
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(1);
    expect(deadlines.size).toBe(0);
  });
});
