/**
 * "Drop these keys from your L1": what one instance tells the others after it wrote a
 * key. It names keys by id, and by invalidation tag where an id cannot do; it never
 * carries a key hash or a plaintext key, so whoever can read the transport (a Redis
 * `SUBSCRIBE` or `MONITOR`) learns which key ids changed, and nothing about any key.
 */
export interface ApiKeyInvalidation {
  /** Ids of the changed keys; receivers find the entry through their own id index. */
  ids?: readonly string[];
  /**
   * Invalidation tags (`invalidationTag(keyHash)`, 0-4095) of keys that may now exist:
   * receivers drop every entry under the tag, the unknown-hash entries included, which
   * have no id. A creation sends its key's tag.
   */
  tags?: readonly number[];
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
