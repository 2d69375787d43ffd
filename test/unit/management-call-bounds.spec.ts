import type { CallHandler, ExecutionContext } from '@nestjs/common';
import { firstValueFrom, from, type Observable } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BackendUnavailableError } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { ManagementCallBounds } from '../../lib/management/management-call-bounds.interceptor.js';

/** A handler whose store call settles when the test says so. */
function handler() {
  let settle!: (value: string) => void;
  const reply = new Promise<string>((resolve) => (settle = resolve));
  const next: CallHandler = { handle: () => from(reply) };
  return { next, settle };
}
const context = {} as ExecutionContext;
const outcome = (observable: Observable<unknown>) => firstValueFrom(observable).then((value) => ({ value }), (error: unknown) => ({ error }));

afterEach(() => {
  vi.useRealTimers();
});

describe('ManagementCallBounds', () => {
  it('fails a call with BackendUnavailableError at verifyTimeoutMs, and keeps counting it until the store settles', async () => {
    vi.useFakeTimers();
    const bounds = new ManagementCallBounds(resolveApiAuthOptions({ verifyTimeoutMs: 1_000, maxPendingLookups: 10 }));
    const call = handler();
    const result = outcome(bounds.intercept(context, call.next));
    await vi.advanceTimersByTimeAsync(999);
    expect(bounds.pendingCalls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const { error } = (await result) as { error: unknown };
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toBe('The API key backend did not answer within 1000 ms.');
    expect(bounds.pendingCalls).toBe(1);
    call.settle('late');
    await vi.advanceTimersByTimeAsync(0);
    expect(bounds.pendingCalls).toBe(0);
  });

  it('refuses past maxPendingLookups without calling the handler, and admits again once one settles', async () => {
    const bounds = new ManagementCallBounds(resolveApiAuthOptions({ verifyTimeoutMs: 0, maxPendingLookups: 2 }));
    const calls = [handler(), handler()];
    const results = calls.map((call) => outcome(bounds.intercept(context, call.next)));
    let handled = 0;
    const refused = await outcome(bounds.intercept(context, { handle: () => (handled++, from(Promise.resolve('x'))) }));
    expect(refused).toMatchObject({ error: expect.any(BackendUnavailableError) });
    expect(handled).toBe(0);
    calls[0]!.settle('a');
    expect(await results[0]).toEqual({ value: 'a' });
    expect(bounds.pendingCalls).toBe(1);
    expect(await outcome(bounds.intercept(context, { handle: () => from(Promise.resolve('b')) }))).toEqual({ value: 'b' });
    calls[1]!.settle('c');
    expect(await results[1]).toEqual({ value: 'c' });
    expect(bounds.pendingCalls).toBe(0);
  });

  it('with both options 0, neither times out nor bounds', async () => {
    vi.useFakeTimers();
    const bounds = new ManagementCallBounds(resolveApiAuthOptions({ verifyTimeoutMs: 0, maxPendingLookups: 0 }));
    const calls = Array.from({ length: 50 }, () => handler());
    const results = calls.map((call) => outcome(bounds.intercept(context, call.next)));
    await vi.advanceTimersByTimeAsync(24 * 3_600_000);
    expect(bounds.pendingCalls).toBe(50);
    calls.forEach((call, i) => call.settle(`v${i}`));
    expect((await Promise.all(results)).every((r, i) => 'value' in r && r.value === `v${i}`)).toBe(true);
    expect(bounds.pendingCalls).toBe(0);
  });

  it('passes a handler error through and stops counting it', async () => {
    const bounds = new ManagementCallBounds(resolveApiAuthOptions({}));
    const failure = new Error('validation');
    const result = await outcome(bounds.intercept(context, { handle: () => from(Promise.reject(failure)) }));
    expect(result).toEqual({ error: failure });
    expect(bounds.pendingCalls).toBe(0);
  });
});
