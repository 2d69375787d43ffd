import { Logger } from '@nestjs/common';
import { BackendUnavailableError } from '../api-key.errors.js';
import type { ApiKeyInvalidation, ApiKeyInvalidationBus } from '../cache/invalidation-bus.interface.js';
import { decodeInvalidation, encodeInvalidation } from '../cache/invalidation-message.js';
import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';
import { positiveIntegerOption, redisNamespaceOption } from '../options/option-values.js';
import { safeErrorMessage } from '../internal/safe-error-message.js';
import { isRedisCluster, publishOnCluster, type RedisClusterClient } from './redis-cluster.client.js';
import { watchClusterTopology } from './redis-cluster.topology.js';
import { ClusterInvalidationSubscriber } from './redis-invalidation.cluster-subscriber.js';
import type { RedisInvalidationSubscriber } from './redis-client.types.js';

export type { RedisInvalidationSubscriber } from './redis-client.types.js';

/** The node-redis (v5) client the bus publishes with; `createClient()` from `redis` fits. */
export interface RedisInvalidationClient {
  readonly isReady: boolean;
  publish(channel: string, message: string): Promise<unknown>;
  duplicate(overrides?: { name?: string }): RedisInvalidationSubscriber;
}

/** Options of {@link RedisInvalidationBus}. */
export interface RedisInvalidationBusOptions {
  /**
   * Namespace of the channel, which is `<namespace>:invalidate`. Every instance that
   * shares keys must use the same one; separate deployments on one Redis use separate
   * ones. Default `"api-auth"`.
   */
  namespace?: string;
  /**
   * How long a publish may take before the key write that sent it carries on without
   * it, in milliseconds. The other instances then catch up within their L1 `ttl`.
   * Default `1000`.
   */
  publishTimeoutMs?: number;
  /**
   * Name of the subscriber connection (`CLIENT SETNAME`), so it is recognisable in
   * `CLIENT LIST`. Default `"<namespace>:invalidation"`.
   */
  connectionName?: string;
}

/** Every option of {@link RedisInvalidationBusOptions}. */
export const REDIS_INVALIDATION_BUS_OPTION_NAMES = optionNames<RedisInvalidationBusOptions>({
  namespace: true,
  publishTimeoutMs: true,
  connectionName: true,
});

/**
 * Redis pub/sub transport for L1 invalidations: publishes with your client, subscribes
 * on a duplicate the bus owns (`close()` ends only that), names keys by id and 12-bit
 * tag, never by hash, and clears every L1 on it after a reconnect; on Cluster it takes
 * the `createCluster()` client. What a message carries and why: docs/caching.md, "What
 * the bus carries"; Cluster: docs/redis-cluster.md.
 *
 * ```ts
 * const bus = await new RedisInvalidationBus(redis, { namespace: 'billing' }).connect();
 * const backend = new CachedBackend(new MikroOrmBackend(orm), { bus });
 * ```
 */
export class RedisInvalidationBus implements ApiKeyInvalidationBus {
  /** The pub/sub channel: `<namespace>:invalidate`. */
  readonly channel: string;
  /** Name of the subscriber connection in `CLIENT LIST`. */
  readonly connectionName: string;
  private readonly logger = new Logger('ApiAuth');
  private readonly publishTimeoutMs: number;
  private readonly handlers = new Set<(message: ApiKeyInvalidation) => void>();
  private readonly reconnectHandlers = new Set<() => void>();
  private subscriber: RedisInvalidationSubscriber | undefined;
  private connecting: Promise<this> | undefined;
  private everReady = false;
  private disconnected = false;
  private closed = false;

  constructor(
    /** Publishes invalidations: a node-redis client or cluster client. Never closed by the bus. */
    private readonly client: RedisInvalidationClient | RedisClusterClient,
    options: RedisInvalidationBusOptions = {},
  ) {
    if (isRedisCluster(client)) watchClusterTopology(client);
    assertKnownOptions(options, REDIS_INVALIDATION_BUS_OPTION_NAMES, { of: 'RedisInvalidationBus' });
    const namespace = redisNamespaceOption('RedisInvalidationBus', options.namespace);
    const timeout = positiveIntegerOption('RedisInvalidationBus', 'publishTimeoutMs', options.publishTimeoutMs, 1_000);
    this.channel = `${namespace}:invalidate`;
    this.connectionName = options.connectionName ?? `${namespace}:invalidation`;
    this.publishTimeoutMs = timeout;
  }

  /** Whether the subscription is live: messages published now will be received. */
  get isListening(): boolean {
    return this.everReady && !this.disconnected && !this.closed;
  }

  /**
   * Opens the subscriber connection and subscribes. Idempotent; `subscribe()` calls it
   * too, but awaiting it at start-up means no message is missed from the first request.
   */
  connect(): Promise<this> {
    if (this.closed) return Promise.reject(new Error('nestjs-api-auth: the RedisInvalidationBus is closed.'));
    this.connecting ??= this.open().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    return this.connecting;
  }

  async publish(message: ApiKeyInvalidation): Promise<void> {
    // First, so that a malformed message is reported as such whether Redis is up or not.
    const payload = encodeInvalidation(message);
    // node-redis queues commands while offline; a key write must not wait for Redis to return.
    const ready = isRedisCluster(this.client) ? this.client.isOpen : this.client.isReady;
    if (!ready) throw new BackendUnavailableError('Redis is not connected; the invalidation was not published.');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new BackendUnavailableError(`Redis did not accept the invalidation within ${this.publishTimeoutMs} ms.`)),
        this.publishTimeoutMs,
      );
      timer.unref();
    });
    try {
      const sent = isRedisCluster(this.client) ? publishOnCluster(this.client, this.channel, payload) : this.client.publish(this.channel, payload);
      await Promise.race([sent, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  subscribe(handler: (message: ApiKeyInvalidation) => void): () => void {
    this.handlers.add(handler);
    this.connect().catch((error: unknown) => {
      if (this.closed) return;
      this.logger.error(`Could not subscribe to API key invalidations: ${safeErrorMessage(error)}`);
    });
    return () => void this.handlers.delete(handler);
  }

  onReconnect(handler: () => void): () => void {
    this.reconnectHandlers.add(handler);
    return () => void this.reconnectHandlers.delete(handler);
  }

  /** Ends the subscriber connection the bus opened. The client you passed stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    // A subscriber still connecting (Redis down since start-up) would keep `connecting`
    // pending until Redis is back; it has no replies worth waiting for.
    if (subscriber && !this.everReady && subscriber.isOpen) subscriber.destroy();
    await this.connecting?.catch(() => undefined);
    if (subscriber?.isOpen) {
      // close() waits for pending replies; destroy() covers a connection that is down.
      await subscriber.close().catch(() => subscriber.destroy());
    }
  }

  private async open(): Promise<this> {
    const subscriber = isRedisCluster(this.client)
      ? new ClusterInvalidationSubscriber(this.client, this.connectionName)
      : this.client.duplicate({ name: this.connectionName });
    this.subscriber = subscriber;
    // Without an 'error' listener node-redis would crash the process on a dropped connection.
    subscriber.on('error', (error: Error) => {
      if (this.disconnected || this.closed) return;
      this.disconnected = true;
      this.logger.warn(
        `Lost the API key invalidation subscription; L1 entries stay at most their TTL old until it is back: ${safeErrorMessage(error)}`,
      );
    });
    subscriber.on('reconnecting', () => {
      if (!this.closed) this.disconnected = true;
    });
    subscriber.on('ready', () => {
      // node-redis has resubscribed by the time it reports ready.
      if (!this.everReady || this.closed) return;
      this.disconnected = false;
      this.logger.log('The API key invalidation subscription is back; clearing the L1.');
      for (const handler of [...this.reconnectHandlers]) this.safely(handler);
    });
    try {
      await subscriber.connect();
      // close() destroyed it mid-connect; node-redis would leave a subscribe on it pending forever.
      if (this.closed) throw new Error('nestjs-api-auth: the RedisInvalidationBus was closed while connecting.');
      await subscriber.subscribe(this.channel, (payload) => this.receive(payload));
    } catch (error) {
      if (subscriber.isOpen) subscriber.destroy();
      if (this.subscriber === subscriber) this.subscriber = undefined;
      throw error;
    }
    this.everReady = true;
    this.disconnected = false;
    if (this.closed) {
      // close() ran while we were connecting.
      await subscriber.close().catch(() => subscriber.destroy());
    }
    return this;
  }

  private receive(payload: string): void {
    const message = decodeInvalidation(payload);
    for (const handler of [...this.handlers]) this.safely(() => handler(message));
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.logger.error(`An API key invalidation handler failed: ${safeErrorMessage(error)}`);
    }
  }
}
