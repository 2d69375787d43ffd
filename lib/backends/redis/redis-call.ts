import type { ReplyDeadlines } from '../../reply-deadlines.js';

/**
 * Runs one Redis client call and settles one promise with its reply, passed through
 * `decode` when given. A call that throws, a rejected reply, and a reply later than
 * the deadline (when `deadlines` is set) all reject with `failure(error)`; an error
 * `decode` throws is passed on as it is.
 *
 * One promise, no async frame, and the deadline adds none of its own: with Redis as
 * the only store, `RedisBackend` runs this on every request (and `RedisRateLimiter` on
 * every request of a key with limits), and each promise is a microtask hop. Not
 * node-redis's per-command `timeout`: it only covers commands not yet written (not a
 * hung server) and its timer per command cut throughput threefold.
 */
export function redisCall<T>(
  run: () => Promise<unknown>,
  deadlines: ReplyDeadlines | undefined,
  failure: (error: unknown) => Error,
  decode?: (reply: unknown) => T,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let reply: Promise<unknown>;
    try {
      reply = run();
    } catch (error) {
      reject(failure(error));
      return;
    }
    const deadline = deadlines?.start((error) => reject(failure(error)));
    reply.then(
      (value) => {
        if (deadline !== undefined) deadlines!.clear(deadline);
        try {
          resolve(decode === undefined ? (value as T) : decode(value));
        } catch (error) {
          reject(error);
        }
      },
      (error: unknown) => {
        if (deadline !== undefined) deadlines!.clear(deadline);
        reject(failure(error));
      },
    );
  });
}
