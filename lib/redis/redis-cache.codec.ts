import type { ApiKey, ApiKeyMetadata } from '../api-key.interface.js';
import type { ApiKeyPolicy } from '../policy/api-key-policy.js';
import { asciiJson } from '../internal/ascii-json.js';

/** One cached answer for a key hash: the record, or "not found". */
export interface RedisCacheEntry {
  /** The generation that was current when the primary was read; `null` when there was none. */
  generation: string | null;
  /** When the entry was filled (ms since the epoch, the filler's clock). */
  filledAt: number;
  /**
   * After this instant (ms) the entry is ignored, whatever Redis's own TTL says. It is
   * fixed when the primary is read, so a fill that reaches Redis late cannot live longer.
   */
  validUntil: number;
  /** The record as the primary returned it, or `null` when the primary had no such key. */
  record: ApiKey | null;
}

/** The wire form. Short names keep hot entries small; `keyHash` is deliberately absent. */
interface WireEntry {
  g: string | null;
  f: number;
  x: number;
  r: WireRecord | null;
}

interface WireRecord {
  i: string;
  n: string;
  o: string;
  h: string;
  s: string[];
  m: ApiKeyMetadata;
  c: number;
  u: number;
  e: number | null;
  v: number | null;
  l: number | null;
  p: string | null;
  /** environment; absent in entries written before it existed, read as null. */
  en?: string | null;
  /** policy; likewise. */
  po?: ApiKeyPolicy | null;
  /** version; absent in entries written before it existed, read as 1. */
  ve?: number;
  /** issuedById; likewise, read as null. */
  ib?: string | null;
  /** disabledAt; likewise, read as null. */
  di?: number | null;
}

const time = (date: Date | null): number | null => (date === null ? null : date.getTime());

/**
 * Serialises an entry. The record goes without its `keyHash`: the cache key is derived
 * from the hash, so storing it again would only put a secret-derived value in one more
 * place.
 */
export function encodeRedisCacheEntry(entry: RedisCacheEntry): string {
  const record = entry.record;
  const wire: WireEntry = {
    g: entry.generation,
    f: entry.filledAt,
    x: entry.validUntil,
    r:
      record === null
        ? null
        : {
            i: record.id,
            n: record.name,
            o: record.ownerId,
            h: record.hint,
            s: record.scopes,
            m: record.metadata,
            c: record.createdAt.getTime(),
            u: record.updatedAt.getTime(),
            e: time(record.expiresAt),
            v: time(record.revokedAt),
            l: time(record.lastUsedAt),
            p: record.rotatedFromId,
            en: record.environment ?? null,
            po: record.policy ?? null,
            ve: record.version ?? 1,
            ib: record.issuedById ?? null,
            di: time(record.disabledAt ?? null),
          },
  };
  // ASCII, as RedisBackend stores its records: every hint holds an ellipsis, and a
  // reply with any non-ASCII byte reaches V8 as a two-byte string, dearer to parse.
  return asciiJson(JSON.stringify(wire));
}

/**
 * Reads what {@link encodeRedisCacheEntry} wrote, putting back the `keyHash` the entry
 * was looked up by. Anything else (a hand-edited value, a truncated write, another
 * layout) comes back `undefined`: a cache entry that cannot be read is a miss, never
 * a guess.
 */
export function decodeRedisCacheEntry(raw: unknown, keyHash: string): RedisCacheEntry | undefined {
  if (typeof raw !== 'string') return undefined;
  let wire: Partial<WireEntry>;
  try {
    wire = JSON.parse(raw) as Partial<WireEntry>;
  } catch {
    return undefined;
  }
  if (wire === null || typeof wire !== 'object') return undefined;
  const { g, f, x, r } = wire;
  if ((g !== null && typeof g !== 'string') || !isTime(f) || !isTime(x)) return undefined;
  if (r === null) return { generation: g, filledAt: f, validUntil: x, record: null };
  const record = decodeRecord(r, keyHash);
  return record ? { generation: g, filledAt: f, validUntil: x, record } : undefined;
}

function decodeRecord(r: unknown, keyHash: string): ApiKey | undefined {
  if (r === null || typeof r !== 'object') return undefined;
  const w = r as Partial<WireRecord>;
  if (
    typeof w.i !== 'string' ||
    typeof w.n !== 'string' ||
    typeof w.o !== 'string' ||
    typeof w.h !== 'string' ||
    !Array.isArray(w.s) ||
    !w.s.every((scope) => typeof scope === 'string') ||
    w.m === null ||
    typeof w.m !== 'object' ||
    Array.isArray(w.m) ||
    !isTime(w.c) ||
    !isTime(w.u) ||
    !isOptionalTime(w.e) ||
    !isOptionalTime(w.v) ||
    !isOptionalTime(w.l) ||
    (w.p !== null && typeof w.p !== 'string') ||
    (w.en !== undefined && w.en !== null && typeof w.en !== 'string') ||
    (w.po !== undefined && w.po !== null && (typeof w.po !== 'object' || Array.isArray(w.po))) ||
    (w.ve !== undefined && (!Number.isSafeInteger(w.ve) || w.ve < 1)) ||
    (w.ib !== undefined && w.ib !== null && typeof w.ib !== 'string') ||
    (w.di !== undefined && !isOptionalTime(w.di))
  ) {
    return undefined;
  }
  return {
    id: w.i,
    name: w.n,
    ownerId: w.o,
    keyHash,
    hint: w.h,
    scopes: w.s,
    metadata: w.m,
    createdAt: new Date(w.c),
    updatedAt: new Date(w.u),
    expiresAt: w.e === null ? null : new Date(w.e),
    revokedAt: w.v === null ? null : new Date(w.v),
    lastUsedAt: w.l === null ? null : new Date(w.l),
    rotatedFromId: w.p,
    environment: w.en ?? null,
    policy: w.po ?? null,
    version: w.ve ?? 1,
    issuedById: w.ib ?? null,
    disabledAt: w.di === undefined || w.di === null ? null : new Date(w.di),
  };
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

function isOptionalTime(value: unknown): value is number | null {
  return value === null || isTime(value);
}
