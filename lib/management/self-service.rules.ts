import { BlockList } from 'node:net';
import { counterKeyOf } from '../policy/counter-key.js';
import { parseIpRule } from '../policy/ip-allowlist.js';
import type { ApiKeyPolicy } from '../policy/api-key-policy.js';
import { hasLimits } from '../policy/policy.validation.js';
import { grantsEveryScope } from '../scopes/scope-patterns.js';

/**
 * The rules a self-service key (one without the admin scope) is held to on the
 * management routes: it can never produce, or keep alive, a key more capable than
 * itself. Pure functions over records, so each rule is tested on its own; the
 * controller applies them to the record it read and to the request. SECURITY.md has
 * the same rules as one table.
 */

/** What a key can do, as far as these rules compare keys. */
export interface KeyCapabilities {
  id: string;
  scopes: readonly string[];
  environment?: string | null;
  policy?: ApiKeyPolicy | null;
  expiresAt: Date | null;
}

/** Why a self-service request is refused: the 403 body's `code` and `message`. */
export interface SelfServiceRefusal {
  code: 'scope_escalation' | 'forbidden_environment' | 'forbidden_policy' | 'forbidden_expiry';
  message: string;
}

const SCOPES: SelfServiceRefusal = {
  code: 'scope_escalation',
  // Naming the missing scopes would describe the caller's key; the rule is enough.
  message: 'A self-service key can only grant, or manage keys with, scopes it holds itself.',
};
const ENVIRONMENT: SelfServiceRefusal = {
  code: 'forbidden_environment',
  message: 'A self-service key can only issue, change or rotate keys of its own environment.',
};
const POLICY: SelfServiceRefusal = {
  code: 'forbidden_policy',
  message: 'A self-service key can only issue, change or rotate keys whose policy is at least as strict as its own.',
};
const EXPIRY: SelfServiceRefusal = {
  code: 'forbidden_expiry',
  message: 'A self-service key can only make keys that expire no later than itself.',
};
const EXTENSION: SelfServiceRefusal = {
  code: 'forbidden_expiry',
  message: "A self-service key cannot extend, clear or revive a key's expiry; only an admin key can.",
};

/**
 * Whether `held` grants every scope of `scopes`, patterns included: `reports:*` covers
 * `reports:read` and `reports:eu:*`, while `reports:read` never covers `reports:*`.
 */
export function scopesWithin(scopes: readonly string[], held: readonly string[]): boolean {
  return grantsEveryScope(held, scopes);
}

/** Whether two records are of the same environment (`null`/absent: none). */
export function sameEnvironment(a: Pick<KeyCapabilities, 'environment'>, b: Pick<KeyCapabilities, 'environment'>): boolean {
  return (a.environment ?? null) === (b.environment ?? null);
}

/** Whether `expiresAt` is no later than `bound`; `null` is "never", later than any instant. */
export function expiresNoLater(expiresAt: Date | null, bound: Date | null): boolean {
  if (bound === null) return true;
  return expiresAt !== null && expiresAt.getTime() <= bound.getTime();
}

/** Whether every address or range of `entries` lies inside one of `allowed` (same address family). */
export function addressesWithin(entries: readonly string[], allowed: readonly string[]): boolean {
  const outer = allowed.map(parseIpRule).filter((rule) => rule !== null);
  return entries.every((entry) => {
    const inner = parseIpRule(entry);
    // Aligned ranges nest: a range lies inside another when it is at least as narrow and
    // one of its addresses (the one written) lies inside.
    return inner !== null && outer.some((o) => o.family === inner.family && o.prefix <= inner.prefix && inRange(inner.address, o.address, o.prefix, o.family));
  });
}

/**
 * Whether `key`'s policy is at least as strict as `caller`'s:
 * - every rate limit of the caller is on the key, with the same name and window and no higher limit;
 * - the caller's quota is on the key, with the same refill interval and no higher limit;
 * - the caller's address allowlist is on the key, every entry inside one of the caller's;
 * - when the caller has limits, the key counts against the caller's counters (same
 *   counter key), so many keys share one budget instead of multiplying it.
 * The key may add rules of its own. A caller without a policy allows any policy.
 */
export function policyAtLeastAsStrict(key: Pick<KeyCapabilities, 'id' | 'policy'>, caller: Pick<KeyCapabilities, 'id' | 'policy'>): boolean {
  const limits = caller.policy ?? null;
  if (limits === null) return true;
  const own = key.policy ?? null;
  if (own === null) return false;
  for (const rule of limits.rateLimits ?? []) {
    const match = own.rateLimits?.find((r) => r.name === rule.name && r.windowMs === rule.windowMs);
    if (match === undefined || match.limit > rule.limit) return false;
  }
  if (limits.quota !== undefined) {
    const quota = own.quota;
    if (quota === undefined || quota.refillIntervalMs !== limits.quota.refillIntervalMs || quota.limit > limits.quota.limit) return false;
  }
  if (limits.allowedIps !== undefined && (own.allowedIps === undefined || !addressesWithin(own.allowedIps, limits.allowedIps))) {
    return false;
  }
  return !hasLimits(limits) || counterKeyOf({ id: key.id, policy: own }) === counterKeyOf({ id: caller.id, policy: limits });
}

/**
 * Why a self-service `caller` may not end up with `result` (a key it issues, a key
 * after its change, or the key it rotates, whose replacement inherits all of this),
 * or `null` when it may. Checked in this order: scopes, environment, policy, expiry.
 */
export function refusalForResult(caller: KeyCapabilities, result: KeyCapabilities): SelfServiceRefusal | null {
  if (!scopesWithin(result.scopes, caller.scopes)) return SCOPES;
  if (!sameEnvironment(result, caller)) return ENVIRONMENT;
  if (!policyAtLeastAsStrict(result, caller)) return POLICY;
  if (!expiresNoLater(result.expiresAt, caller.expiresAt)) return EXPIRY;
  return null;
}

/**
 * Why a self-service caller may not move a key's expiry from `current` to `next`:
 * only an earlier instant is allowed. Clearing it, extending it, or moving an expired
 * key's (or a rotated-out key's grace end) into the future is the admin's.
 */
export function refusalForExpiryChange(current: Date | null, next: Date | null): SelfServiceRefusal | null {
  return expiresNoLater(next, current) ? null : EXTENSION;
}

/**
 * Why a self-service caller may not grant `target.scopes`, or revoke, delete or
 * otherwise manage a key holding them: only scopes it holds itself.
 */
export function refusalForScopes(caller: Pick<KeyCapabilities, 'scopes'>, target: Pick<KeyCapabilities, 'scopes'>): SelfServiceRefusal | null {
  return scopesWithin(target.scopes, caller.scopes) ? null : SCOPES;
}

/**
 * The expiry of a key a self-service caller issues: the one asked for, or the
 * caller's own when the request names none (`undefined`). An explicit `null` stays
 * `null`, for {@link refusalForResult} to refuse when the caller expires.
 */
export function expiryForIssue(requested: Date | null | undefined, caller: Pick<KeyCapabilities, 'expiresAt'>): Date | null {
  return requested === undefined ? caller.expiresAt : requested;
}

/**
 * The module's `defaultScopes` as a self-service caller may grant them: those it holds
 * itself. Defaults are a convenience, never a way past {@link refusalForScopes}.
 */
export function grantableDefaultScopes(defaults: readonly string[], caller: Pick<KeyCapabilities, 'scopes'>): string[] {
  return defaults.filter((scope) => scopesWithin([scope], caller.scopes));
}

/** Whether `address` lies inside `network/prefix`; both valid and of `family`. */
function inRange(address: string, network: string, prefix: number, family: 'ipv4' | 'ipv6'): boolean {
  const range = new BlockList();
  range.addSubnet(network, prefix, family);
  return range.check(address, family);
}
