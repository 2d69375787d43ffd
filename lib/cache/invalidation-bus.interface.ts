/**
 * "Drop these keys from your L1": what one instance tells the others after it wrote a
 * key. It carries ids and key hashes, never a plaintext key; hashes may travel on the
 * bus but are never logged.
 */
export interface ApiKeyInvalidation {
  /** Ids of the changed keys; receivers find the hash through their own id index. */
  ids?: readonly string[];
  /** Hashes of the changed keys; also drops negative entries, which have no id. */
  hashes?: readonly string[];
  /** Drop everything: a bulk change, or a message the receiver could not read. */
  all?: boolean;
  /** Who sent it, so a sender can skip its own echo. Opaque. */
  origin?: string;
}

/**
 * Carries invalidations between the instances of a fleet. `RedisInvalidationBus`
 * (from `nestjs-api-auth/redis`) implements it over Redis pub/sub; implement it over
 * NATS, PostgreSQL `LISTEN/NOTIFY` or anything with fan-out delivery.
 *
 * Delivery may be lost while a connection is down; that is what `onReconnect` is for:
 * a receiver that may have missed messages clears its whole cache.
 */
export interface ApiKeyInvalidationBus {
  /**
   * Sends the message to every subscribed instance (the sender's own subscribers
   * included). Rejects when it cannot be sent; it must settle in bounded time, since a
   * key write waits for it.
   */
  publish(message: ApiKeyInvalidation): Promise<void>;

  /** Calls `handler` for every message received. Returns a function that unsubscribes. */
  subscribe(handler: (message: ApiKeyInvalidation) => void): () => void;

  /**
   * Calls `handler` each time delivery resumes after a loss of connection, once the
   * subscription is live again (not on the first connect). Returns a function that
   * removes the handler.
   */
  onReconnect(handler: () => void): () => void;
}
