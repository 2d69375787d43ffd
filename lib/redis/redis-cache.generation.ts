import { randomBytes } from 'node:crypto';

/**
 * One write in progress on a key: who (a random id of that write) and until when
 * (ms since the epoch, the writer's clock) readers must not trust the cache for it.
 */
export interface WriteLease {
  writer: string;
  until: number;
}

/** Separates a generation's token from its leases; never part of a token or a writer id (base64url). */
const LEASE_SEPARATOR = '~';
const BASE36 = /^[0-9a-z]{1,11}$/;

/** A fresh random generation token. */
export function newGenerationToken(): string {
  return randomBytes(12).toString('base64url');
}

/** A fresh random writer id for one write's lease. */
export function newLeaseWriter(): string {
  return randomBytes(6).toString('base64url');
}

/**
 * A key's generation value: a random token, then the write leases it carries,
 * `<token>~<writer>.<until in base 36>~...`. A value without leases is the token alone,
 * as every generation was before leases existed, so older values still read.
 */
export function formatGeneration(token: string, leases: readonly WriteLease[]): string {
  let value = token;
  for (const lease of leases) value += `${LEASE_SEPARATOR}${lease.writer}.${lease.until.toString(36)}`;
  return value;
}

/**
 * The leases a generation value carries. A lease that does not parse is kept as one
 * that never ends (`until` Infinity): a value this version cannot read must not let a
 * reader trust the cache; the next write's lease placement replaces it.
 */
export function generationLeases(value: string): WriteLease[] {
  if (!value.includes(LEASE_SEPARATOR)) return [];
  const leases: WriteLease[] = [];
  for (const part of value.split(LEASE_SEPARATOR).slice(1)) {
    const dot = part.indexOf('.');
    const digits = dot > 0 ? part.slice(dot + 1) : '';
    const until = BASE36.test(digits) ? parseInt(digits, 36) : NaN;
    leases.push({ writer: dot > 0 ? part.slice(0, dot) : part, until: Number.isSafeInteger(until) ? until : Infinity });
  }
  return leases;
}

/**
 * Whether a write holds the key at `now`: readers then treat the cache as a miss, read
 * the primary and fill nothing. Once every lease has ended, the value (token and
 * leases) is an ordinary generation: entries filled from then on name it.
 */
export function isLeased(value: string, now: number): boolean {
  // The hot path: a value without leases costs one scan of a 16-character string.
  if (!value.includes(LEASE_SEPARATOR)) return false;
  return generationLeases(value).some((lease) => lease.until > now);
}

/**
 * The leases of `value` a new value must carry on: those still running at `now`, without
 * `writer`'s own, and without any that does not parse (a write replaces those).
 */
export function otherLiveLeases(value: unknown, now: number, writer?: string): WriteLease[] {
  if (typeof value !== 'string') return [];
  return generationLeases(value).filter((lease) => lease.until > now && Number.isFinite(lease.until) && lease.writer !== writer);
}
