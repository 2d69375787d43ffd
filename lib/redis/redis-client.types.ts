/**
 * The one method `RedisBackend` needs from a Redis client: send a raw command and
 * resolve to its reply. A node-redis v5 client (`createClient()` from `redis`) fits as
 * it is, so users are not tied to one import or one version of the typings.
 *
 * Any other client fits through a one-line wrapper; for ioredis:
 * `{ sendCommand: ([command, ...args]) => redis.call(command!, ...args) }`.
 *
 * Error replies must reject (node-redis rejects with `ErrorReply`, whose message starts
 * with the Redis error code, e.g. `NOSCRIPT`).
 */
export interface RedisCommandClient {
  sendCommand(args: string[]): Promise<unknown>;
}

/** One node of a {@link RedisClusterClient}'s topology, as node-redis v5 lists it. */
export interface RedisClusterNode {
  readonly host: string;
  readonly port: number;
  /** node-redis's connection to that node, once it has one. */
  readonly client?: unknown;
}

/**
 * A node-redis v5 cluster client (`createCluster()` from `redis`): the members the
 * library uses. Pass it wherever a Redis client is taken; it is detected, no wrapper
 * needed.
 */
export interface RedisClusterClient {
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]): Promise<unknown>;
  readonly isOpen: boolean;
  readonly masters: readonly RedisClusterNode[];
  readonly replicas: readonly RedisClusterNode[];
  nodeClient(node: RedisClusterNode): unknown;
  publish(channel: string, message: string): Promise<unknown>;
  on(event: string, listener: (...args: any[]) => void): unknown;
}

/** The subscriber connection the bus opens with `duplicate()`: the node-redis calls it uses. */
export interface RedisInvalidationSubscriber {
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): unknown;
  on(event: string, listener: (...args: any[]) => void): unknown;
}
