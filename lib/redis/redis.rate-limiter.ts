import { BackendUnavailableError } from '../api-key.errors.js';
import { redactedError } from '../internal/safe-error-message.js';
import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';
import {
  MAX_QUOTA_BALANCE,
  type CounterRules,
  type LimitDecision,
  type LimitRequest,
  type LimitUsage,
  type QuotaChange,
  type QuotaStatus,
  type RateLimiter,
} from '../policy/rate-limiter.interface.js';
import type { QuotaRule, RateLimitRule } from '../policy/api-key-policy.js';
import { callWithin, ReplyDeadlineExceeded, ReplyDeadlines } from '../internal/reply-deadlines.js';
import type { RedisCommandClient } from './redis-client.types.js';
import { commandClient, type RedisClient } from './redis-cluster.client.js';
import { ADJUST_QUOTA, CONSUME, PEEK } from './redis.rate-limiter.scripts.js';

type Tuple7 = [number, number, number, number, number, number, number];

/** Options of `new RedisRateLimiter(client, options)`. */
export interface RedisRateLimiterOptions {
  /**
   * Prefix of every counter key, so the limiter can share a database. Counters look
   * like `api-auth:limits:{<key id>}:rl:<name>:<windowMs>`. Default `"api-auth:limits:"`.
   */
  namespace?: string;
  /**
   * Longest wait for Redis, in milliseconds, before `consume` rejects (and the guard
   * answers 503 to keys that have limits). `0` waits forever. Default `1000`.
   */
  commandTimeoutMs?: number;
}

const OPTION_NAMES = optionNames<RedisRateLimiterOptions>({ namespace: true, commandTimeoutMs: true });

/**
 * Per-key rate limits and quotas counted in Redis and shared, atomically, by every
 * instance given a client of the same Redis (one Lua script, one round trip per
 * request); pass it as the module's `rateLimiter`. It never closes the client, and on
 * Redis Cluster takes the `createCluster()` client. Why a sliding window counter, and
 * how spent quota credits are kept: docs/limits.md, "Rate limits" and "Quotas".
 *
 * ```ts
 * ApiAuthModule.forRoot({ backend, rateLimiter: new RedisRateLimiter(redisClient) })
 * ```
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly namespace: string;
  private readonly deadlines: ReplyDeadlines | undefined;
  private readonly client: RedisCommandClient;

  /**
   * @param client a connected node-redis v5 client or cluster client (`createCluster()`),
   *   or anything with `sendCommand(args)`. Create it with `disableOfflineQueue: true` so
   *   calls fail at once while Redis is unreachable.
   */
  constructor(client: RedisClient, options: RedisRateLimiterOptions = {}) {
    this.client = commandClient(client, 'RedisRateLimiter');
    assertKnownOptions(options, OPTION_NAMES, { of: 'RedisRateLimiter' });
    const namespace = options.namespace ?? 'api-auth:limits:';
    if (typeof namespace !== 'string' || namespace.length > 200) {
      throw new Error('RedisRateLimiter: option "namespace" must be a string of at most 200 characters.');
    }
    const timeout = options.commandTimeoutMs ?? 1_000;
    if (!Number.isSafeInteger(timeout) || timeout < 0 || timeout > 2_147_483_647) {
      throw new Error(`RedisRateLimiter: option "commandTimeoutMs" must be a non-negative integer (got ${String(timeout)}).`);
    }
    this.namespace = namespace;
    this.deadlines = timeout > 0 ? new ReplyDeadlines(timeout) : undefined;
  }

  async consume(counterKey: string, request: LimitRequest): Promise<LimitDecision> {
    const base = this.base(counterKey);
    const { rateLimits, quota, cost } = request;
    const keys = rateLimits.map((rule) => windowKey(base, rule));
    const args = [String(rateLimits.length)];
    for (const rule of rateLimits) args.push(String(rule.limit), String(rule.windowMs));
    if (quota) {
      keys.push(quotaKey(base, quota.refillIntervalMs));
      args.push(String(quota.limit), String(quota.refillIntervalMs ?? 0), String(cost));
    } else {
      args.push('', '0', '0');
    }

    const reply = ((await this.send(() => CONSUME.run(this.client, keys, args))) as unknown[]).map(Number);

    const [verdict, ruleIndex, remaining, resetMs, retryAfterMs, quotaRemaining, quotaReset] = reply as Tuple7;
    const rule = ruleIndex > 0 ? rateLimits[ruleIndex - 1] : undefined;
    const rateLimit = rule ? { name: rule.name, limit: rule.limit, remaining, resetMs } : null;
    const quotaStatus = quota
      ? { limit: quota.limit, remaining: quotaRemaining, resetMs: quotaReset < 0 ? null : quotaReset }
      : null;
    if (verdict === 2 && quotaStatus) {
      return { allowed: false, reason: 'quota_exhausted', quota: quotaStatus, retryAfterMs: quotaStatus.resetMs };
    }
    if (verdict === 1 && rateLimit) return { allowed: false, reason: 'rate_limited', rateLimit, retryAfterMs };
    return { allowed: true, rateLimit, quota: quotaStatus };
  }

  /**
   * One `DEL` of the exact counter keys (no scan): those of `rules`, plus the quota
   * that never refills, the only counter without a TTL. They share the key's hash
   * tag, so the one command also works on Redis Cluster. Rejects with
   * `BackendUnavailableError` when Redis cannot answer.
   */
  async deleteCounters(counterKey: string, rules: CounterRules): Promise<void> {
    const base = this.base(counterKey);
    const keys = new Set(rules.rateLimits.map((rule) => windowKey(base, rule)));
    if (rules.quota) keys.add(quotaKey(base, rules.quota.refillIntervalMs));
    keys.add(quotaKey(base, undefined));
    await this.send(() => this.client.sendCommand(['DEL', ...keys]));
  }

  /** One script reading every counter of `rules` without writing; see {@link RateLimiter.peek}. */
  async peek(counterKey: string, rules: CounterRules): Promise<LimitUsage> {
    const base = this.base(counterKey);
    const { rateLimits, quota } = rules;
    const keys = rateLimits.map((rule) => windowKey(base, rule));
    const args = [String(rateLimits.length)];
    for (const rule of rateLimits) args.push(String(rule.limit), String(rule.windowMs));
    if (quota) {
      keys.push(quotaKey(base, quota.refillIntervalMs));
      args.push(String(quota.limit), String(quota.refillIntervalMs ?? 0));
    } else {
      args.push('', '0');
    }
    const reply = ((await this.send(() => PEEK.run(this.client, keys, args))) as unknown[]).map(Number);
    const statuses = rateLimits.map((rule, i) => ({ name: rule.name, limit: rule.limit, remaining: reply[2 * i]!, resetMs: reply[2 * i + 1]! }));
    const [remaining, resetMs] = [reply[2 * rateLimits.length]!, reply[2 * rateLimits.length + 1]!];
    return { rateLimits: statuses, quota: quota ? { limit: quota.limit, remaining, resetMs: resetMs < 0 ? null : resetMs } : null };
  }

  /** One script, so no call spending credits interleaves; see {@link RateLimiter.adjustQuota}. */
  async adjustQuota(counterKey: string, quota: QuotaRule, change: QuotaChange): Promise<QuotaStatus> {
    const [mode, n] = 'set' in change ? ['set', change.set] : ['add', change.add];
    const args = [String(quota.limit), String(quota.refillIntervalMs ?? 0), mode, String(n), String(MAX_QUOTA_BALANCE)];
    const key = quotaKey(this.base(counterKey), quota.refillIntervalMs);
    const reply = ((await this.send(() => ADJUST_QUOTA.run(this.client, [key], args))) as unknown[]).map(Number);
    return { limit: quota.limit, remaining: reply[0]!, resetMs: reply[1]! < 0 ? null : reply[1]! };
  }

  /** Resolves when Redis answers a PING within `commandTimeoutMs`; for health checks. */
  async checkHealth(): Promise<void> {
    const ping = this.client.sendCommand(['PING']);
    await (this.deadlines ? this.deadlines.track(ping) : ping);
  }

  /** Every counter of `counterKey` starts with this; the key is the Cluster hash tag. */
  private base(counterKey: string): string {
    return `${this.namespace}{${counterKey}}:`;
  }

  /** Runs a command within `commandTimeoutMs`; any failure becomes `BackendUnavailableError` (see `callWithin`). */
  private send(run: () => Promise<unknown>): Promise<unknown> {
    return callWithin(run, this.deadlines, limiterUnavailable);
  }
}

/** The HASH counting one rate limit. */
const windowKey = (base: string, rule: RateLimitRule) => `${base}rl:${rule.name}:${rule.windowMs}`;
/** The HASH counting a quota; one that never refills is under interval 0. */
const quotaKey = (base: string, refillIntervalMs: number | undefined) => `${base}q:${refillIntervalMs ?? 0}`;

/** The class name only, and a redacted copy as cause: a reply's text may echo the arguments. */
function limiterUnavailable(error: unknown): BackendUnavailableError {
  const why =
    error instanceof ReplyDeadlineExceeded ? `no reply within ${error.ms} ms` : error instanceof Error ? error.constructor.name : typeof error;
  return new BackendUnavailableError(`The Redis rate limiter could not answer (${why}).`, { cause: redactedError(error) });
}
