import { BlockList, isIP } from 'node:net';

/** One allowlist entry: an address, or a CIDR range. */
export interface IpRule {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** Parses `"203.0.113.7"`, `"10.0.0.0/8"` or `"2001:db8::/32"`; `null` when it is none of these. */
export function parseIpRule(entry: unknown): IpRule | null {
  if (typeof entry !== 'string' || entry.length === 0 || entry.length > 64) return null;
  const slash = entry.indexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const bits = entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return null;
    prefix = Number(bits);
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** How many compiled lists are kept; beyond it the cache starts over (a policy is tiny to compile). */
const CACHE_BOUND = 10_000;

/**
 * Answers "may this address use the key?" for the `allowedIps` of a key's policy,
 * with node's `BlockList` (which also matches IPv4-mapped IPv6 addresses such as
 * `::ffff:10.0.0.1` against IPv4 rules). Each distinct list is compiled once.
 */
export class IpAllowlist {
  private readonly compiled = new Map<string, BlockList>();

  /** Whether `ip` is inside one of `entries`. An address that is missing or unparsable never is. */
  allows(ip: string | undefined, entries: readonly string[]): boolean {
    if (ip === undefined) return false;
    const family = isIP(ip);
    if (family === 0) return false;
    return this.listFor(entries).check(ip, family === 4 ? 'ipv4' : 'ipv6');
  }

  private listFor(entries: readonly string[]): BlockList {
    const id = entries.join(',');
    let list = this.compiled.get(id);
    if (list === undefined) {
      list = new BlockList();
      for (const entry of entries) {
        // Entries were validated when the policy was written; one that no longer parses allows nothing.
        const rule = parseIpRule(entry);
        if (rule) list.addSubnet(rule.address, rule.prefix, rule.family);
      }
      if (this.compiled.size >= CACHE_BOUND) this.compiled.clear();
      this.compiled.set(id, list);
    }
    return list;
  }
}
