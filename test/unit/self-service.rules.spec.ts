import { describe, expect, it } from 'vitest';
import {
  grantableDefaultScopes,
  addressesWithin,
  expiresNoLater,
  expiryForIssue,
  policyAtLeastAsStrict,
  refusalForExpiryChange,
  refusalForScopes,
  refusalForResult,
  type KeyCapabilities,
} from '../../lib/management/self-service.rules.js';
import type { ApiKeyPolicy } from 'nestjs-api-auth';

const HOUR = 3_600_000;
const at = (ms: number) => new Date(Date.UTC(2030, 0, 1) + ms);
const burst = { name: 'burst', limit: 10, windowMs: 1000 };
const daily = { limit: 100, refillIntervalMs: 86_400_000 };

const caller: KeyCapabilities = {
  id: 'caller',
  scopes: ['api-keys:self', 'reports:read', 'reports:write'],
  environment: 'test',
  policy: { rateLimits: [burst], quota: daily, allowedIps: ['10.0.0.0/8', '2001:db8::/32'] },
  expiresAt: at(HOUR),
};
/** A key the caller minted: its policy, on its counters, its expiry. */
const minted = (over: Partial<KeyCapabilities> = {}): KeyCapabilities => ({
  id: 'minted',
  scopes: ['reports:read'],
  environment: 'test',
  policy: { ...caller.policy, counterKey: 'caller' },
  expiresAt: at(HOUR),
  ...over,
});
const withPolicy = (policy: ApiKeyPolicy | null) => minted({ policy });

describe('refusalForResult: a self-service key never produces a key more capable than itself', () => {
  it('accepts a key within every bound, and the caller itself', () => {
    expect(refusalForResult(caller, minted())).toBeNull();
    expect(refusalForResult(caller, caller)).toBeNull();
    expect(refusalForResult(caller, minted({ expiresAt: at(1) }))).toBeNull();
  });

  it.each([
    ['a scope the caller lacks', minted({ scopes: ['reports:read', 'billing:write'] }), 'scope_escalation'],
    ['another environment', minted({ environment: 'live' }), 'forbidden_environment'],
    ['no environment when the caller has one', minted({ environment: null }), 'forbidden_environment'],
    ['no policy', withPolicy(null), 'forbidden_policy'],
    ['a later expiry', minted({ expiresAt: at(HOUR + 1) }), 'forbidden_expiry'],
    ['no expiry', minted({ expiresAt: null }), 'forbidden_expiry'],
  ])('refuses %s', (_label, result, code) => {
    expect(refusalForResult(caller, result)?.code).toBe(code);
  });

  it('checks scopes first, then environment, policy, expiry', () => {
    const everything = minted({ scopes: ['x'], environment: 'live', policy: null, expiresAt: null });
    expect(refusalForResult(caller, everything)?.code).toBe('scope_escalation');
    expect(refusalForResult(caller, { ...everything, scopes: [] })?.code).toBe('forbidden_environment');
    expect(refusalForResult(caller, { ...everything, scopes: [], environment: 'test' })?.code).toBe('forbidden_policy');
  });

  it('lets a caller without a policy or an expiry produce keys with any of them', () => {
    const open: KeyCapabilities = { ...caller, policy: null, expiresAt: null };
    expect(refusalForResult(open, minted({ policy: null, expiresAt: null }))).toBeNull();
    expect(refusalForResult(open, minted())).toBeNull();
  });
});

describe('policyAtLeastAsStrict', () => {
  const strict = (policy: ApiKeyPolicy | null, id = 'minted') => policyAtLeastAsStrict({ id, policy }, caller);

  it('holds for the same rules on the same counters, and for stricter or extra rules', () => {
    expect(strict({ ...caller.policy, counterKey: 'caller' })).toBe(true);
    // The caller's own record counts under its id: a key without a counter key is its own.
    expect(strict(caller.policy!, 'caller')).toBe(true);
    expect(
      strict({
        rateLimits: [{ ...burst, limit: 1 }, { name: 'extra', limit: 5, windowMs: 60_000 }],
        quota: { ...daily, limit: 0 },
        allowedIps: ['10.1.2.3', '10.2.0.0/16', '2001:db8:1::/48'],
        counterKey: 'caller',
      }),
    ).toBe(true);
  });

  it.each([
    ['a higher rate limit', { ...caller.policy, rateLimits: [{ ...burst, limit: 11 }] }],
    ['the rate limit under another window', { ...caller.policy, rateLimits: [{ ...burst, windowMs: 999 }] }],
    ['the rate limit under another name (other counters)', { ...caller.policy, rateLimits: [{ ...burst, name: 'b2' }] }],
    ['no rate limit', { quota: daily, allowedIps: caller.policy!.allowedIps }],
    ['a higher quota', { ...caller.policy, quota: { ...daily, limit: 101 } }],
    ['a quota that refills on another interval', { ...caller.policy, quota: { limit: 100, refillIntervalMs: 3_600_000 } }],
    ['a quota without the caller\'s refill interval (other counters)', { ...caller.policy, quota: { limit: 100 } }],
    ['no quota', { rateLimits: [burst], allowedIps: caller.policy!.allowedIps }],
    ['no allowlist', { rateLimits: [burst], quota: daily }],
    ['a wider range', { ...caller.policy, allowedIps: ['10.0.0.0/7'] }],
    ['an address outside', { ...caller.policy, allowedIps: ['11.0.0.1'] }],
    ['an IPv6 range outside', { ...caller.policy, allowedIps: ['2001:db9::/32'] }],
  ])('fails for %s', (_label, policy) => {
    expect(strict({ ...policy, counterKey: 'caller' } as ApiKeyPolicy)).toBe(false);
  });

  it("fails for the caller's exact rules on counters of their own: that would be a second budget", () => {
    expect(strict({ rateLimits: [burst], quota: daily, allowedIps: caller.policy!.allowedIps })).toBe(false);
    expect(strict({ ...caller.policy, counterKey: 'someone-else' })).toBe(false);
  });

  it('asks nothing about counters of a caller with only an allowlist', () => {
    const allowlisted = { id: 'c', policy: { allowedIps: ['192.168.0.0/16'] } };
    expect(policyAtLeastAsStrict({ id: 'k', policy: { allowedIps: ['192.168.1.0/24'] } }, allowlisted)).toBe(true);
    expect(policyAtLeastAsStrict({ id: 'k', policy: { allowedIps: ['192.169.0.1'] } }, allowlisted)).toBe(false);
    expect(policyAtLeastAsStrict({ id: 'k', policy: null }, allowlisted)).toBe(false);
  });
});

describe('addressesWithin', () => {
  it.each([
    [['10.1.2.3'], ['10.0.0.0/8'], true],
    [['10.0.0.0/8'], ['10.0.0.0/8'], true],
    [['10.5.0.0/16', '192.168.1.1'], ['10.0.0.0/8', '192.168.0.0/16'], true],
    [['10.0.0.0/7'], ['10.0.0.0/8'], false],
    [['0.0.0.0/0'], ['10.0.0.0/8'], false],
    [['2001:db8:abcd::1'], ['2001:db8::/32'], true],
    [['::ffff:10.0.0.1'], ['10.0.0.0/8'], false], // another family: refused, never guessed
    [['not-an-ip'], ['0.0.0.0/0'], false],
  ])('%j within %j: %s', (entries, allowed, expected) => {
    expect(addressesWithin(entries, allowed)).toBe(expected);
  });
});

describe('expiry rules', () => {
  it('expiresNoLater treats null as never', () => {
    expect(expiresNoLater(at(1), at(2))).toBe(true);
    expect(expiresNoLater(at(2), at(2))).toBe(true);
    expect(expiresNoLater(at(3), at(2))).toBe(false);
    expect(expiresNoLater(null, at(2))).toBe(false);
    expect(expiresNoLater(null, null)).toBe(true);
    expect(expiresNoLater(at(3), null)).toBe(true);
  });

  it('a self-service change may only bring the expiry forward: never extend, clear or revive', () => {
    expect(refusalForExpiryChange(at(HOUR), at(1))).toBeNull();
    expect(refusalForExpiryChange(null, at(1))).toBeNull();
    expect(refusalForExpiryChange(at(HOUR), at(HOUR + 1))?.code).toBe('forbidden_expiry');
    expect(refusalForExpiryChange(at(HOUR), null)?.code).toBe('forbidden_expiry');
    // An expired key (or a rotated-out key past its grace end) only ever gets a later instant.
    expect(refusalForExpiryChange(new Date(0), at(1))?.code).toBe('forbidden_expiry');
  });

  it("issue without an expiry takes the caller's; an explicit one, null included, stays for the check", () => {
    expect(expiryForIssue(undefined, caller)).toEqual(caller.expiresAt);
    expect(expiryForIssue(undefined, { expiresAt: null })).toBeNull();
    expect(expiryForIssue(null, caller)).toBeNull();
    expect(expiryForIssue(at(5), caller)).toEqual(at(5));
  });
});

describe('refusalForScopes', () => {
  it('lets a self-service key revoke or delete only keys whose scopes it holds', () => {
    expect(refusalForScopes(caller, minted())).toBeNull();
    expect(refusalForScopes(caller, caller)).toBeNull();
    expect(refusalForScopes(caller, { scopes: ['api-keys:admin'] })?.code).toBe('scope_escalation');
  });
});

describe('grantableDefaultScopes', () => {
  it('keeps only the defaults the caller holds, in their order: defaults never escalate', () => {
    expect(grantableDefaultScopes(['b', 'a', 'c'], { scopes: ['a', 'b'] })).toEqual(['b', 'a']);
    expect(grantableDefaultScopes(['a'], { scopes: [] })).toEqual([]);
    expect(grantableDefaultScopes([], { scopes: ['a'] })).toEqual([]);
  });
});
