import { randomBytes } from 'node:crypto';
import { BackendUnavailableError } from '../api-key.errors.js';
import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';
import { positiveIntegerOption, redisNamespaceOption } from '../options/option-values.js';
import type { UsageWriteCoordinator } from '../usage/usage-coordinator.js';
import { ReplyDeadlines } from '../internal/reply-deadlines.js';
import { commandClient, type RedisClient, type RedisCommandClientWithState } from './redis-cluster.client.js';
import { RedisScript } from './redis.scripts.js';

/** Options of {@link RedisUsageCoordinator}. */
export interface RedisUsageCoordinatorOptions {
  /**
   * Prefix of the claim keys, which are `<namespace>:usage:<key id>`. Every instance
   * that shares a store must use the same one. Default `"api-auth"`.
   */
  namespace?: string;
  /**
   * How long a claim may wait for Redis, in milliseconds, before the instance writes
   * anyway. Default `500`.
   */
  timeoutMs?: number;
}

const OPTION_NAMES = optionNames<RedisUsageCoordinatorOptions>({ namespace: true, timeoutMs: true });

/**
 * KEYS: the claim. ARGV: token, interval (ms). Returns 0 when claimed, otherwise the
 * milliseconds the current claim has left (at least 1), in one round trip.
 */
const CLAIM = new RedisScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left == -1 then return tonumber(ARGV[2]) end
if left < 1 then return 1 end
return left
`);

/** Deletes the claim only if this instance holds it: another instance's claim stays. */
const RELEASE = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * Shares usage writes out across a fleet through Redis: before writing a key's
 * `lastUsedAt`, an instance runs `SET <namespace>:usage:<id> <token> NX PX <interval>`
 * (in a script that also reads the remaining time when the `SET` fails), and only the
 * instance whose `SET` succeeds writes. The others ask again when that claim expires.
 * The store then receives one usage write per key per interval from the whole fleet.
 *
 * ```ts
 * ApiAuthModule.forRoot({ backend, usageCoordinator: new RedisUsageCoordinator(redis) });
 * ```
 *
 * When Redis is down, slow or not connected the claim rejects and the instance writes
 * anyway (the store's conditional write still drops duplicates), so an outage costs
 * extra writes, never a request. Key ids appear in the claim keys; key hashes never
 * do. The client you pass is never closed.
 */
export class RedisUsageCoordinator implements UsageWriteCoordinator {
  /** Prefix of every claim key: `<namespace>:usage:`. */
  readonly keyPrefix: string;
  /** Identifies this instance's claims, so `release` never removes another's. */
  private readonly token = randomBytes(12).toString('base64url');
  private readonly deadlines: ReplyDeadlines;
  private readonly client: RedisCommandClientWithState;

  /**
   * @param client a node-redis v5 client (`createClient()` from `redis`) or cluster
   *   client (`createCluster()`), or anything with `sendCommand(args)`; when it has
   *   `isReady` (node-redis does; for a cluster client, `isOpen`), claims made while it
   *   is not connected fail at once instead of waiting in its offline queue.
   */
  constructor(client: RedisClient & { readonly isReady?: boolean }, options: RedisUsageCoordinatorOptions = {}) {
    this.client = commandClient(client, 'nestjs-api-auth: RedisUsageCoordinator');
    assertKnownOptions(options, OPTION_NAMES, { of: 'RedisUsageCoordinator' });
    const namespace = redisNamespaceOption('RedisUsageCoordinator', options.namespace);
    const timeout = positiveIntegerOption('RedisUsageCoordinator', 'timeoutMs', options.timeoutMs, 500);
    this.keyPrefix = `${namespace}:usage:`;
    this.deadlines = new ReplyDeadlines(timeout);
  }

  /** `true` when this instance won the interval, else the milliseconds the winner's claim has left. */
  async claim(id: string, intervalMs: number): Promise<boolean | number> {
    if (!Number.isSafeInteger(intervalMs) || intervalMs < 1) {
      throw new Error(`nestjs-api-auth: a usage claim needs a positive integer interval (got ${String(intervalMs)}).`);
    }
    const left = Number(await this.run(CLAIM, id, [this.token, String(intervalMs)]));
    if (!Number.isFinite(left)) throw new Error('nestjs-api-auth: Redis answered a usage claim with something other than a number.');
    return left === 0 ? true : left;
  }

  async release(id: string): Promise<void> {
    await this.run(RELEASE, id, [this.token]);
  }

  private async run(script: RedisScript, id: string, args: string[]): Promise<unknown> {
    // node-redis queues commands while offline; a pending write must not wait for Redis to return.
    if (this.client.isReady === false) {
      throw new BackendUnavailableError('Redis is not connected; usage writes are not coordinated.');
    }
    let reply: Promise<unknown>;
    try {
      reply = script.run(this.client, [this.keyPrefix + id], args);
    } catch (error) {
      reply = Promise.reject(error);
    }
    return this.deadlines.track(reply);
  }
}
