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
