import type { ApiKeyInvalidation } from './invalidation-bus.interface.js';
import { invalidationTag, isInvalidationTag } from './invalidation-tag.js';

/**
 * Version tag of the wire format, so a fleet in a rolling upgrade can tell formats
 * apart. Format 2 names keys by id and tag; format 1 also carried key hashes.
 */
const VERSION = 2;

/**
 * The previous format, still read so that an instance not yet upgraded keeps reaching
 * upgraded ones at once during a rolling upgrade. Its hashes are turned into tags on
 * receipt and go no further; the sender had already put them on the channel. To be
 * dropped one release after format 2 shipped: from then on it decodes as "drop everything".
 */
const LEGACY_VERSION = 1;

/** Most ids or tags one message may carry; more is not a message this library sent. */
const MAX_ITEMS = 10_000;

/** Longest hash a format-1 message may carry: a hex SHA-256 is 64 characters. */
const MAX_LEGACY_HASH_LENGTH = 256;

/**
 * The JSON form of an invalidation, for buses that carry strings:
 * `{"v":2,"o":"<origin>","i":["<key id>"],"t":[1234]}`, `"a":true` for "drop everything".
 * Throws a `TypeError` for a message that is not an {@link ApiKeyInvalidation}, and
 * for one that carries key hashes: a hash never goes on the wire.
 */
export function encodeInvalidation(message: ApiKeyInvalidation): string {
  if (message === null || typeof message !== 'object') {
    throw new TypeError('nestjs-api-auth: an invalidation must be an object { ids?, tags?, all?, origin? }.');
  }
  if ((message as { hashes?: unknown }).hashes !== undefined) {
    throw new TypeError(
      'nestjs-api-auth: an invalidation names keys by id and tag, never by hash; send `tags: hashes.map(invalidationTag)` instead of "hashes".',
    );
  }
  const { ids, tags, all, origin } = message;
  if (ids !== undefined && stringList(ids) === null) {
    throw new TypeError(`nestjs-api-auth: invalidation "ids" must be an array of at most ${MAX_ITEMS} strings.`);
  }
  if (tags !== undefined && tagList(tags) === null) {
    throw new TypeError(
      `nestjs-api-auth: invalidation "tags" must be an array of at most ${MAX_ITEMS} tags (integers 0-4095, from invalidationTag).`,
    );
  }
  if (all !== undefined && typeof all !== 'boolean') throw new TypeError('nestjs-api-auth: invalidation "all" must be a boolean.');
  if (origin !== undefined && typeof origin !== 'string') throw new TypeError('nestjs-api-auth: invalidation "origin" must be a string.');
  // Field by field: whatever else the object holds is not written.
  return JSON.stringify({
    v: VERSION,
    o: origin,
    a: all === true ? true : undefined,
    i: ids?.length ? ids : undefined,
    t: tags?.length ? tags : undefined,
  });
}

/**
 * Reads what {@link encodeInvalidation} wrote, and format 1 (see `LEGACY_VERSION`).
 * Anything else (another version, a truncated, foreign or hand-written payload)
 * decodes as "drop everything": a receiver that cannot tell which keys changed must
 * assume any may have.
 */
export function decodeInvalidation(payload: string): ApiKeyInvalidation {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return { all: true };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { all: true };
  const { v, o, a, i, t, h } = parsed as Record<string, unknown>;
  if (a !== undefined && typeof a !== 'boolean') return { all: true };
  const ids = i === undefined ? [] : stringList(i);
  let tags: number[] | null;
  if (v === VERSION) tags = t === undefined ? [] : tagList(t);
  else if (v === LEGACY_VERSION) tags = h === undefined ? [] : legacyTags(h);
  else return { all: true };
  if (ids === null || tags === null) return { all: true };
  return { ids, tags, all: a === true, origin: typeof o === 'string' ? o : undefined };
}

function stringList(value: unknown): string[] | null {
  if (!Array.isArray(value) || value.length > MAX_ITEMS) return null;
  for (const item of value) if (typeof item !== 'string') return null;
  return value as string[];
}

function tagList(value: unknown): number[] | null {
  if (!Array.isArray(value) || value.length > MAX_ITEMS) return null;
  for (const item of value) if (!isInvalidationTag(item)) return null;
  return value as number[];
}

/** Format 1's hashes as the tags they fall under: the receiver drops those entries, and the hashes are forgotten. */
function legacyTags(value: unknown): number[] | null {
  const hashes = stringList(value);
  if (hashes === null) return null;
  const tags: number[] = [];
  for (const hash of hashes) {
    if (hash.length > MAX_LEGACY_HASH_LENGTH) return null;
    tags.push(invalidationTag(hash));
  }
  return tags;
}
