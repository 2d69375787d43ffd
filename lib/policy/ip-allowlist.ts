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

/** How many compiled lists, and how many (list, address) answers, are kept before starting over. */
const LISTS_BOUND = 10_000;
const ANSWERS_BOUND = 10_000;

interface Compiled {
  /** Distinguishes lists in the answer cache. */
  id: number;
  list: BlockList;
}

/**
 * Answers "may this address use the key?" for the `allowedIps` of a key's policy,
 * with node's `BlockList` (which also matches IPv4-mapped IPv6 addresses such as
 * `::ffff:10.0.0.1` against IPv4 rules). Each distinct list is compiled once, and
 * answers are remembered per list and address: `BlockList.check` is dear next to a
 * map lookup, and a key's calls mostly come from the same few addresses.
 */
export class IpAllowlist {
  /** By array identity first: the L1 cache hands out one frozen record per key, so this is the common hit. */
  private readonly byArray = new WeakMap<readonly string[], Compiled>();
  private readonly byText = new Map<string, Compiled>();
  private readonly answers = new Map<string, boolean>();
  private nextId = 0;

  /** Whether `ip` is inside one of `entries`. An address that is missing or unparsable never is. */
  allows(ip: string | undefined, entries: readonly string[]): boolean {
    if (ip === undefined) return false;
    const compiled = this.compiledFor(entries);
    const key = `${compiled.id}\0${ip}`;
    let allowed = this.answers.get(key);
    if (allowed === undefined) {
      const family = isIP(ip);
      allowed = family !== 0 && compiled.list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
      if (this.answers.size >= ANSWERS_BOUND) this.answers.clear();
      this.answers.set(key, allowed);
    }
    return allowed;
  }

  private compiledFor(entries: readonly string[]): Compiled {
    let compiled = this.byArray.get(entries);
    if (compiled !== undefined) return compiled;
    const text = entries.join(',');
    compiled = this.byText.get(text);
    if (compiled === undefined) {
      const list = new BlockList();
      for (const entry of entries) {
        // Entries were validated when the policy was written; one that no longer parses allows nothing.
        const rule = parseIpRule(entry);
        if (rule) list.addSubnet(rule.address, rule.prefix, rule.family);
      }
      compiled = { id: this.nextId++, list };
      if (this.byText.size >= LISTS_BOUND) this.byText.clear();
      this.byText.set(text, compiled);
    }
    this.byArray.set(entries, compiled);
    return compiled;
  }
}
