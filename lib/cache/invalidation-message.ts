import type { ApiKeyInvalidation } from './invalidation-bus.interface.js';

/** Version tag of the wire format, so a fleet in a rolling upgrade can tell formats apart. */
const VERSION = 1;

/** Most ids or hashes one message may carry; more is not a message this library sent. */
const MAX_ITEMS = 10_000;

/** The JSON form of an invalidation, for buses that carry strings. */
export function encodeInvalidation(message: ApiKeyInvalidation): string {
  return JSON.stringify({
    v: VERSION,
    o: message.origin,
    a: message.all === true ? true : undefined,
    i: message.ids?.length ? message.ids : undefined,
    h: message.hashes?.length ? message.hashes : undefined,
  });
}

/**
 * Reads what {@link encodeInvalidation} wrote. Anything else (another version, a
 * truncated or hand-written payload) decodes as "drop everything": a receiver that
 * cannot tell which keys changed must assume any may have.
 */
export function decodeInvalidation(payload: string): ApiKeyInvalidation {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return { all: true };
  }
  if (parsed === null || typeof parsed !== 'object') return { all: true };
  const { v, o, a, i, h } = parsed as Record<string, unknown>;
  if (v !== VERSION) return { all: true };
  const ids = stringList(i);
  const hashes = stringList(h);
  if (ids === null || hashes === null || (a !== undefined && typeof a !== 'boolean')) return { all: true };
  return {
    ids,
    hashes,
    all: a === true,
    origin: typeof o === 'string' ? o : undefined,
  };
}

function stringList(value: unknown): string[] | null {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > MAX_ITEMS) return null;
  for (const item of value) if (typeof item !== 'string') return null;
  return value as string[];
}
