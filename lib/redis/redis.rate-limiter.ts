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
import { RedisScript } from './redis.scripts.js';

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
 * The sliding window counter of `lib/policy/sliding-window.ts`, ported line by line,
 * for every rule of a request plus its quota, as one script: Redis runs it atomically,
 * so instances sharing the Redis never count a request twice nor let two requests
 * take the last slot. Time is Redis's own (`TIME`), so the instances' clocks do not
 * matter.
 *
 * KEYS: one HASH per rate limit (`w` window index, `c` current, `p` previous count),
 * then the quota HASH (`p` period, `u` credits used) when there is a quota.
 * ARGV: rule count; limit and window (ms) of each rule; quota limit ('' for none),
 * refill interval (ms, 0 for never) and cost.
 * Replies `{ verdict, rule, remaining, resetMs, retryAfterMs, quotaRemaining, quotaResetMs }`:
 * verdict 0 allowed, 1 rate limited, 2 quota exhausted; `rule` is the 1-based index of
 * the rule reported (0 for none); -1 stands for "never" in the quota's reset.
 */
const CONSUME = new RedisScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local rules = {}
local denied, deniedRetry = 0, -1
local tightest, tightestRemaining = 0, math.huge
for i = 1, n do
  local limit = tonumber(ARGV[2 * i])
  local w = tonumber(ARGV[2 * i + 1])
  local idx = math.floor(now / w)
  local s = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
  local sw, c, p = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]) or 0
  if sw == nil or sw < idx - 1 or sw > idx then
    c, p = 0, 0
  elseif sw == idx - 1 then
    p, c = c, 0
  end
  local elapsed = now - idx * w
  local estimate = p * (w - elapsed) / w + c
  local fits = estimate + 1 <= limit
  local after = estimate
  if fits then after = estimate + 1 end
  local remaining = math.max(0, math.floor(limit - after))
  if not fits then
    local retry
    if c + 1 <= limit and p > 0 then
      retry = math.ceil(w - (limit - 1 - c) * w / p) - elapsed
    else
      retry = w - elapsed + math.max(0, math.ceil(w - (limit - 1) * w / c))
    end
    if retry < 1 then retry = 1 end
    if retry > deniedRetry then denied, deniedRetry = i, retry end
  end
  if remaining < tightestRemaining then tightest, tightestRemaining = i, remaining end
  rules[i] = { idx, c, p, w, remaining, w - elapsed }
end

local hasQuota = ARGV[2 * n + 2] ~= ''
local qRemaining, qReset, qFits, period, used, cost, refill = 0, -1, true, 0, 0, 0, 0
if hasQuota then
  local qlimit = tonumber(ARGV[2 * n + 2])
  refill = tonumber(ARGV[2 * n + 3])
  cost = tonumber(ARGV[2 * n + 4])
  if refill > 0 then period = math.floor(now / refill) end
  local q = redis.call('HMGET', KEYS[n + 1], 'p', 'u')
  if tonumber(q[1]) == period then used = tonumber(q[2]) or 0 end
  qFits = used + cost <= qlimit
  if qFits then qRemaining = qlimit - used - cost else qRemaining = math.max(0, qlimit - used) end
  if refill > 0 then qReset = (period + 1) * refill - now end
end

if not qFits then return { 2, 0, 0, 0, 0, qRemaining, qReset } end
if denied > 0 then
  local r = rules[denied]
  return { 1, denied, r[5], r[6], deniedRetry, qRemaining, qReset }
end
for i = 1, n do
  local r = rules[i]
  redis.call('HSET', KEYS[i], 'w', r[1], 'c', r[2] + 1, 'p', r[3])
  -- Past the next window these counts weigh on no estimate.
  redis.call('PEXPIRE', KEYS[i], (r[1] + 2) * r[4] - now)
end
if hasQuota and cost > 0 then
  redis.call('HSET', KEYS[n + 1], 'p', period, 'u', used + cost)
  if refill > 0 then redis.call('PEXPIRE', KEYS[n + 1], (period + 1) * refill - now) end
end
if tightest > 0 then
  local r = rules[tightest]
  return { 0, tightest, r[5], r[6], 0, qRemaining, qReset }
end
return { 0, 0, 0, 0, 0, qRemaining, qReset }
`);

/**
 * Reads where counters stand without writing (`peek`), with the same roll-over rules as
 * CONSUME. KEYS and ARGV as for CONSUME, without the cost. Replies, per rule, the
 * requests left and ms to the window's end, then the quota's balance and ms to its
 * refill (-1 for never; both -1 without a quota).
 */
const PEEK = new RedisScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  local limit = tonumber(ARGV[2 * i])
  local w = tonumber(ARGV[2 * i + 1])
  local idx = math.floor(now / w)
  local s = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
  local sw, c, p = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]) or 0
  if sw == nil or sw < idx - 1 or sw > idx then
    c, p = 0, 0
  elseif sw == idx - 1 then
    p, c = c, 0
  end
  local elapsed = now - idx * w
  local estimate = p * (w - elapsed) / w + c
  out[#out + 1] = math.max(0, math.floor(limit - estimate))
  out[#out + 1] = w - elapsed
end
if ARGV[2 * n + 2] == '' then
  out[#out + 1] = -1
  out[#out + 1] = -1
  return out
end
local qlimit = tonumber(ARGV[2 * n + 2])
local refill = tonumber(ARGV[2 * n + 3])
local period = 0
if refill > 0 then period = math.floor(now / refill) end
local q = redis.call('HMGET', KEYS[n + 1], 'p', 'u')
local used = 0
if tonumber(q[1]) == period then used = tonumber(q[2]) or 0 end
out[#out + 1] = math.max(0, qlimit - used)
if refill > 0 then out[#out + 1] = (period + 1) * refill - now else out[#out + 1] = -1 end
return out
`);

/**
 * Sets (`set`) or moves (`add`) a quota's balance in one step, in the current refill
 * period (`adjustQuotaCounts` of lib/policy/sliding-window.ts, ported).
 * KEYS: the quota HASH. ARGV: limit, refill interval (ms, 0 for never), 'set' or 'add',
 * n, the largest balance. Replies { balance, ms to refill or -1 }.
 */
const ADJUST_QUOTA = new RedisScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local qlimit = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local n = tonumber(ARGV[4])
local period = 0
if refill > 0 then period = math.floor(now / refill) end
local q = redis.call('HMGET', KEYS[1], 'p', 'u')
local used = 0
if tonumber(q[1]) == period then used = tonumber(q[2]) or 0 end
local balance = n
if ARGV[3] == 'add' then balance = qlimit - used + n end
balance = math.min(tonumber(ARGV[5]), math.max(0, balance))
redis.call('HSET', KEYS[1], 'p', period, 'u', qlimit - balance)
if refill > 0 then
  redis.call('PEXPIRE', KEYS[1], (period + 1) * refill - now)
  return { balance, (period + 1) * refill - now }
end
return { balance, -1 }
`);

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
