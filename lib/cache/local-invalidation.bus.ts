import type { ApiKeyInvalidation, ApiKeyInvalidationBus } from './invalidation-bus.interface.js';
import { decodeInvalidation, encodeInvalidation } from './invalidation-message.js';

/**
 * An {@link ApiKeyInvalidationBus} within one process: several `CachedBackend`s (or
 * several apps in one test) share it. It never disconnects, so `onReconnect` handlers
 * run only when {@link simulateReconnect} is called. Also a reference for writing a bus
 * over another transport.
 */
export class LocalInvalidationBus implements ApiKeyInvalidationBus {
  private readonly handlers = new Set<(message: ApiKeyInvalidation) => void>();
  private readonly reconnectHandlers = new Set<() => void>();

  async publish(message: ApiKeyInvalidation): Promise<void> {
    // Through the wire format, so that in-process tests see what Redis would carry: the
    // same validation, only the fields that travel, and a fresh copy per receiver.
    const payload = encodeInvalidation(message);
    for (const handler of [...this.handlers]) handler(decodeInvalidation(payload));
  }

  subscribe(handler: (message: ApiKeyInvalidation) => void): () => void {
    this.handlers.add(handler);
    return () => void this.handlers.delete(handler);
  }

  onReconnect(handler: () => void): () => void {
    this.reconnectHandlers.add(handler);
    return () => void this.reconnectHandlers.delete(handler);
  }

  /** Runs the reconnect handlers, as a transport does after a dropped connection. For tests. */
  simulateReconnect(): void {
    for (const handler of [...this.reconnectHandlers]) handler();
  }

  /** Number of live subscriptions. */
  get subscriberCount(): number {
    return this.handlers.size;
  }
}
