import { ApiKeyValidationError } from '../api-key.errors.js';
import { parseIpRule } from './ip-allowlist.js';
import type { ApiKeyPolicy, QuotaRule, RateLimitRule } from './api-key-policy.js';

const RULE_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const COUNTER_KEY = /^[\x21-\x7e]{1,128}$/;
const MAX_RATE_LIMITS = 10;
const MAX_ALLOWED_IPS = 1000;
const MAX_WINDOW_MS = 366 * 86_400_000;
const MAX_COUNT = 1_000_000_000;

function invalid(path: string, message: string): never {
  throw new ApiKeyValidationError(path === '' ? 'policy' : `policy.${path}`, message);
}

function integer(path: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    invalid(path, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function plainObject(path: string, value: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) invalid(path, 'must be an object');
  for (const key of Object.keys(value)) {
    // An unknown field is refused rather than ignored: `rateLimit` for `rateLimits`
    // would otherwise leave a key silently unlimited.
    if (!allowed.includes(key)) invalid(path, `has no field ${JSON.stringify(key.slice(0, 64))}`);
  }
  return value as Record<string, unknown>;
}

function rateLimits(value: unknown): RateLimitRule[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_RATE_LIMITS) {
    invalid('rateLimits', `must be an array of 1-${MAX_RATE_LIMITS} limits`);
  }
  const names = new Set<string>();
  return value.map((rule: unknown, i) => {
    const r = plainObject(`rateLimits[${i}]`, rule, ['name', 'limit', 'windowMs']);
    if (typeof r.name !== 'string' || !RULE_NAME.test(r.name)) {
      invalid(`rateLimits[${i}].name`, 'must be 1-64 of letters, digits, "_", ".", ":" or "-"');
    }
    if (names.has(r.name)) invalid(`rateLimits[${i}].name`, 'must be unique');
    names.add(r.name);
    return {
      name: r.name,
      limit: integer(`rateLimits[${i}].limit`, r.limit, 1, MAX_COUNT),
      windowMs: integer(`rateLimits[${i}].windowMs`, r.windowMs, 1, MAX_WINDOW_MS),
    };
  });
}

function quota(value: unknown): QuotaRule {
  const q = plainObject('quota', value, ['limit', 'refillIntervalMs']);
  const rule: QuotaRule = { limit: integer('quota.limit', q.limit, 0, MAX_COUNT) };
  if (q.refillIntervalMs !== undefined) {
    rule.refillIntervalMs = integer('quota.refillIntervalMs', q.refillIntervalMs, 1, MAX_WINDOW_MS);
  }
  return rule;
}

function allowedIps(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_ALLOWED_IPS) {
    // An empty list would lock the key out for good; omit the field to allow any address.
    invalid('allowedIps', `must be an array of 1-${MAX_ALLOWED_IPS} addresses or CIDR ranges`);
  }
  return value.map((entry: unknown, i) => {
    if (parseIpRule(entry) === null) invalid(`allowedIps[${i}]`, 'must be an IPv4 or IPv6 address or CIDR range');
    return entry as string;
  });
}

/**
 * Checks a policy and returns a normalised copy (unknown fields refused, absent parts
 * left out), or `null` for no policy: `null`, `undefined` and `{}` all mean "no
 * limits", and storing `null` keeps such keys on the guard's fast path.
 */
export function validatePolicy(value: unknown): ApiKeyPolicy | null {
  if (value === null || value === undefined) return null;
  const p = plainObject('', value, ['rateLimits', 'quota', 'allowedIps', 'counterKey']);
  const policy: ApiKeyPolicy = {};
  if (p.rateLimits !== undefined) policy.rateLimits = rateLimits(p.rateLimits);
  if (p.quota !== undefined) policy.quota = quota(p.quota);
  if (p.allowedIps !== undefined) policy.allowedIps = allowedIps(p.allowedIps);
  if (p.counterKey !== undefined) {
    if (typeof p.counterKey !== 'string' || !COUNTER_KEY.test(p.counterKey)) {
      invalid('counterKey', 'must be 1-128 printable ASCII characters without spaces');
    }
    policy.counterKey = p.counterKey;
  }
  return Object.keys(policy).length === 0 ? null : policy;
}

/** Whether the policy limits requests (so the guard must consult the rate limiter). */
export function hasLimits(policy: ApiKeyPolicy): boolean {
  return policy.rateLimits !== undefined || policy.quota !== undefined;
}
