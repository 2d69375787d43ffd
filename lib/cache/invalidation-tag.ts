import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';

/** Tags are `0` to `INVALIDATION_TAG_COUNT - 1`: 12 bits. */
export const INVALIDATION_TAG_COUNT = 4096;

/** Domain separation: a tag is computed from no value any other part of the library derives. */
const LABEL = 'nestjs-api-auth/invalidation-tag\0';

// One-shot hashing (Node 20.12+), as in KeyHasher; the fallback keeps older 20.x working.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;
const sha256Hex: (data: string) => string = oneShot
  ? (data) => oneShot('sha256', data, 'hex')
  : (data) => createHash('sha256').update(data, 'utf8').digest('hex');

/**
 * The invalidation tag of a key hash: the first 12 bits of SHA-256 over a label and the
 * hash, carried instead of the hash when an id cannot do. A receiver drops the ~1/4,096
 * of its L1 with that tag; 12 bits confirm no guess about a key
 * (docs/internals.md#invalidation-tags-invalidation-tagts).
 */
export function invalidationTag(keyHash: string): number {
  return Number.parseInt(sha256Hex(LABEL + keyHash).slice(0, 3), 16);
}

/** Whether `value` is a tag, as a decoder must check before trusting one. */
export function isInvalidationTag(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < INVALIDATION_TAG_COUNT;
}
