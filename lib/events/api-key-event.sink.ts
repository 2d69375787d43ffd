import { Logger } from '@nestjs/common';
import type { ApiKeyEvent } from './api-key.events.js';

/**
 * Anything with `emit(name, payload)`: `EventEmitter2` from `@nestjs/event-emitter`,
 * or node's `EventEmitter`. Typed structurally so the library does not depend on either.
 *
 * When the emitter can list its listeners (`EventEmitter2`, node's `EventEmitter`),
 * the library calls them one by one itself, in the order `emit` would, so a listener
 * that throws cannot keep the event from the ones after it, and a promise a listener
 * returns is awaited for its rejection. Anything else gets a plain `emit`. One case stays
 * out of reach: an `EventEmitter2` listener registered with `async: true` and without
 * `promisify` runs later and its result is dropped by `EventEmitter2` itself; keep
 * `@OnEvent()`'s default `suppressErrors: true` for those.
 */
export interface ApiKeyEventEmitter {
  emit(event: string, payload: unknown): unknown;
  /** The listeners `emit(event)` would call (wildcard matches included), in order. */
  listeners?(event: string): readonly unknown[];
  /** node's `EventEmitter`: like `listeners`, but with `once` wrappers, so calling them consumes them. */
  rawListeners?(event: string): readonly unknown[];
  /** `EventEmitter2`: the `onAny` listeners, called before the others with `(event, payload)`. */
  listenersAny?(): readonly unknown[];
}

/** A plain callback receiving every event. */
export type ApiKeyEventListener = (event: ApiKeyEvent) => unknown;

/** Delivers one event to the configured emitter and hook. Never throws. */
export type ApiKeyEventSink = (event: ApiKeyEvent) => void;

/**
 * Combines the `events` emitter and the `onEvent` hook into one function, or `null`
 * when neither is set, so callers skip building payloads nobody reads. Listeners are
 * called synchronously; none can fail the request or operation that emitted: a
 * listener that throws, or returns a promise that rejects, is logged by event name and
 * error name only (its message could quote the payload), and the rejection is handled,
 * so it never reaches `unhandledRejection`.
 */
export function createEventSink(emitter?: ApiKeyEventEmitter, listener?: ApiKeyEventListener): ApiKeyEventSink | null {
  if (!emitter && !listener) return null;
  const logger = new Logger('ApiAuth');
  const report = (error: unknown, type: string, where: string) =>
    logger.error(`A listener of ${type} failed (${errorName(error)}): ${where}.`);
  /** Calls one listener; a throw or a rejection is reported as `where`, `async` for the latter. */
  const call = (send: () => unknown, type: string, where: string, whereAsync: string) => {
    try {
      const result = send();
      if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
        (result as PromiseLike<unknown>).then(undefined, (error: unknown) => report(error, type, whereAsync));
      }
    } catch (error) {
      report(error, type, where);
    }
  };
  const toEmitter = emitter && dispatcher(emitter, call);
  return (event) => {
    if (toEmitter) toEmitter(event);
    if (listener) call(() => listener(event), event.type, 'the onEvent hook', 'the onEvent hook, asynchronously');
  };
}

type Listener = (this: unknown, ...args: unknown[]) => unknown;
type Call = (send: () => unknown, type: string, where: string, whereAsync: string) => void;

const ISOLATED = 'an event listener; the others still received the event';
const ISOLATED_ASYNC = 'an event listener, asynchronously; the others still received the event';
const THROUGH_EMIT = "inside the emitter's emit(), which stops at a throwing listener: those after it did not receive the event";
const THROUGH_EMIT_ASYNC = "a promise returned by the emitter's emit()";

/** How events reach `emitter`: listener by listener when it can list them, else one `emit`. */
function dispatcher(emitter: ApiKeyEventEmitter, call: Call): (event: ApiKeyEvent) => void {
  const raw = typeof emitter.rawListeners === 'function';
  if (!raw && typeof emitter.listeners !== 'function') {
    return (event) => call(() => emitter.emit(event.type, event), event.type, THROUGH_EMIT, THROUGH_EMIT_ASYNC);
  }
  const any = typeof emitter.listenersAny === 'function';
  return (event) => {
    const type = event.type;
    // Copies: a listener that adds or removes listeners must not change this delivery.
    const anyListeners = any ? [...emitter.listenersAny!()] : [];
    const listeners = [...(raw ? emitter.rawListeners!(type) : emitter.listeners!(type))];
    for (const l of anyListeners) {
      if (typeof l !== 'function') continue;
      // EventEmitter2 tells its listeners the event's name through `this.event`.
      (emitter as { event?: unknown }).event = type;
      call(() => (l as Listener).call(emitter, type, event), type, ISOLATED, ISOLATED_ASYNC);
    }
    for (const l of listeners) {
      if (typeof l !== 'function') continue;
      if (any) (emitter as { event?: unknown }).event = type;
      call(() => (l as Listener).call(emitter, event), type, ISOLATED, ISOLATED_ASYNC);
    }
  };
}

/** The error's class name, never its message. */
function errorName(error: unknown): string {
  const name = error !== null && typeof error === 'object' ? (error as { name?: unknown }).name : undefined;
  return typeof name === 'string' && /^\w{1,64}$/.test(name) ? name : typeof error;
}
