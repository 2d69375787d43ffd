import { Logger } from '@nestjs/common';
import type { ApiKeyEvent } from './api-key.events.js';

/**
 * Anything with `emit(name, payload)`: `EventEmitter2` from `@nestjs/event-emitter`,
 * or node's `EventEmitter`. Typed structurally so the library does not depend on either.
 */
export interface ApiKeyEventEmitter {
  emit(event: string, payload: unknown): unknown;
}

/** A plain callback receiving every event. */
export type ApiKeyEventListener = (event: ApiKeyEvent) => unknown;

/** Delivers one event to the configured emitter and hook. Never throws. */
export type ApiKeyEventSink = (event: ApiKeyEvent) => void;

/**
 * Combines the `events` emitter and the `onEvent` hook into one function, or `null`
 * when neither is set, so callers skip building payloads nobody reads. Delivery is
 * synchronous and a throwing or rejecting listener never fails the request or
 * operation that emitted: the error is logged by name only, since its message could
 * quote the payload.
 */
export function createEventSink(emitter?: ApiKeyEventEmitter, listener?: ApiKeyEventListener): ApiKeyEventSink | null {
  if (!emitter && !listener) return null;
  const logger = new Logger('ApiAuth');
  const report = (error: unknown, type: string) =>
    logger.error(`A listener of ${type} failed (${(error as Error)?.name ?? typeof error}); the event was still delivered to the others.`);
  const deliver = (send: () => unknown, type: string) => {
    try {
      const result = send();
      if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
        (result as PromiseLike<unknown>).then(undefined, (error: unknown) => report(error, type));
      }
    } catch (error) {
      report(error, type);
    }
  };
  return (event) => {
    if (emitter) deliver(() => emitter.emit(event.type, event), event.type);
    if (listener) deliver(() => listener(event), event.type);
  };
}
