import * as crypto from 'node:crypto';
import { createHash, createHmac } from 'node:crypto';

// One-shot hashing (Node 20.12+) allocates no Hash handle: half the time of
// createHash() and less garbage on the hot path. The fallback keeps older 20.x working.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;
const sha256Hex: (key: string) => string = oneShot
  ? (key) => oneShot('sha256', key, 'hex')
  : (key) => createHash('sha256').update(key, 'utf8').digest('hex');

/**
 * Hashes plaintext keys for storage and lookup. Keys carry 256 bits of entropy, so a
 * fast hash is safe and a slow one (bcrypt, scrypt) only costs latency on every
 * request; djangorestframework-api-key learned this the hard way. With a `pepper`,
 * HMAC-SHA256 makes a stolen table of hashes useless without the application's secret.
 */
export class KeyHasher {
  private readonly pepper: Buffer | null;

  constructor(pepper?: string | Buffer | null) {
    // An empty pepper is refused, not read as "none": `pepper: process.env.PEPPER` with
    // the variable set but empty would otherwise silently store unpeppered hashes.
    if (pepper == null) {
      this.pepper = null;
    } else {
      this.pepper = typeof pepper === 'string' ? Buffer.from(pepper, 'utf8') : Buffer.from(pepper);
      if (this.pepper.length < 16) {
        throw new Error('nestjs-api-auth: option "pepper" must be at least 16 bytes long.');
      }
    }
  }

  /** Whether hashes are HMAC-SHA256 (true) or plain SHA-256 (false). */
  get peppered(): boolean {
    return this.pepper !== null;
  }

  /** Lowercase hex SHA-256 (or HMAC-SHA256) of the key. */
  hash(key: string): string {
    return this.pepper
      ? createHmac('sha256', this.pepper).update(key, 'utf8').digest('hex')
      : sha256Hex(key);
  }
}

// Fixed once: `s.charCodeAt` loads the method per call, a load V8 caches per string
// representation, and stored and computed hashes come in several (bench/README.md).
const charCodeAt = String.prototype.charCodeAt;

/**
 * Whether a record's stored hash is the one computed from the presented key, compared
 * in constant time: every code unit is read, with no early exit. The record was looked
 * up by this very hash, so this catches a store that answers with the wrong record;
 * anything but a string there (a custom backend's broken record) is no match, rather
 * than a thrown error and a 500. A loop, not `timingSafeEqual`: the two `Buffer`s that
 * needs were a tenth of what a Redis-verified request spends over its floor
 * (bench/README.md, "A cheaper record").
 */
export function sameKeyHash(stored: unknown, computed: string): boolean {
  if (typeof stored !== 'string' || stored.length !== computed.length) return false;
  let difference = 0;
  for (let i = 0; i < computed.length; i++) difference |= charCodeAt.call(stored, i) ^ charCodeAt.call(computed, i);
  return difference === 0;
}
