import { randomBytes } from 'node:crypto';

/** The base62 alphabet in ASCII order, so encoded numbers sort like their values. */
export const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * Characters of base62 needed to carry at least 256 bits: ceil(256 / log2(62)) = 43,
 * which carries 256.03 bits.
 */
export const SECRET_LENGTH = 43;

// 248 = 4 * 62: bytes at or above it are rejected so every character is uniform.
const UNBIASED_LIMIT = 248;

/** `length` uniformly random base62 characters from the system CSPRNG. */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    // Draw a little more than needed; about 3% of bytes are rejected.
    const bytes = randomBytes(Math.ceil((length - out.length) * 1.1) + 4);
    for (let i = 0; i < bytes.length && out.length < length; i++) {
      const byte = bytes[i]!;
      if (byte < UNBIASED_LIMIT) out += BASE62_ALPHABET[byte % 62];
    }
  }
  return out;
}

/** A non-negative integer below 2^53 as exactly `width` base62 characters, zero-padded. */
export function encodeBase62Fixed(value: number, width: number): string {
  let out = '';
  let rest = value;
  for (let i = 0; i < width; i++) {
    out = BASE62_ALPHABET[rest % 62] + out;
    rest = Math.floor(rest / 62);
  }
  if (rest !== 0) throw new RangeError(`${value} does not fit in ${width} base62 characters`);
  return out;
}

/** A new table of each ASCII code's base62 digit value, -1 for characters outside the alphabet. */
export function base62DigitTable(): Int8Array {
  const digits = new Int8Array(128).fill(-1);
  for (let i = 0; i < BASE62_ALPHABET.length; i++) digits[BASE62_ALPHABET.charCodeAt(i)] = i;
  return digits;
}
