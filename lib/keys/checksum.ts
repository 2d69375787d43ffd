import { base62DigitTable, encodeBase62Fixed } from './base62.js';

/** 62^6 > 2^32, so six base62 characters hold any CRC32 value. */
export const CHECKSUM_LENGTH = 6;

/** The CRC-32 (IEEE 802.3, zlib's) byte table. */
const TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/** The CRC register before any byte. */
export const CRC32_START = -1;

/**
 * Feeds the characters `from` to `to` of an ASCII string into a CRC register.
 * Written in JavaScript rather than calling zlib: the per-request check would
 * otherwise copy the key into a native buffer and allocate strings to compare, and
 * for fifty bytes the call costs more than the arithmetic.
 */
export function crc32Update(crc: number, text: string, from: number, to: number): number {
  for (let i = from; i < to; i++) crc = crc32Byte(crc, text.charCodeAt(i));
  return crc;
}

/**
 * Feeds one byte (an ASCII character code) into a CRC register. Not exported: V8's
 * optimized code reads an exported binding through its module cell at every use, which
 * made the per-request check measurably slower (bench/README.md).
 */
const crc32Byte = (crc: number, byte: number): number => TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);

/** The final CRC32 value (unsigned) of a register. */
export const crc32Final = (crc: number): number => (crc ^ -1) >>> 0;

/**
 * The fixed-width base62 CRC32 of `body` (prefix + secret, ASCII), as GitHub does
 * for its tokens: a typo or a truncated copy is caught offline, and secret scanners
 * can tell a real key from random text without asking us.
 */
export function checksum(body: string): string {
  return encodeBase62Fixed(crc32Final(crc32Update(CRC32_START, body, 0, body.length)), CHECKSUM_LENGTH);
}

/**
 * The digit table as a constant of this module, for the same reason: reading digits
 * through an imported helper made the check slower.
 */
const DIGITS = base62DigitTable();

/**
 * `String.prototype.charCodeAt`, called as `charCodeAt.call(text, i)`. Written
 * `text.charCodeAt(i)`, every call loads the method from the string, and V8 caches
 * that load by the string's representation (flat, concatenated, sliced,
 * internalized...). Header values arrive in several, so the cache went generic and
 * each character cost a lookup. With the method fixed, the optimized code calls the
 * builtin directly.
 */
const charCodeAt = String.prototype.charCodeAt;

/**
 * Checks `text` as `<body><6 base62 characters of checksum>`, where the body's first
 * `from` characters (a key's prefix) are already fed into `crc`: `null` when every
 * character after them is base62 and the checksum matches, else why not. One pass
 * reads each character once, for the alphabet and the CRC, and nothing is allocated:
 * this runs on every request.
 */
export function checksumRejection(text: string, from: number, crc: number): 'bad_alphabet' | 'bad_checksum' | null {
  const split = text.length - CHECKSUM_LENGTH;
  for (let i = from; i < split; i++) {
    const c = charCodeAt.call(text, i);
    // Anything beyond ASCII is refused here, before it could index a table.
    if (c > 127 || DIGITS[c]! < 0) return 'bad_alphabet';
    crc = crc32Byte(crc, c);
  }
  let stated = 0;
  for (let i = split; i < text.length; i++) {
    const c = charCodeAt.call(text, i);
    const digit = c > 127 ? -1 : DIGITS[c]!;
    if (digit < 0) return 'bad_alphabet';
    stated = stated * 62 + digit;
  }
  return stated === crc32Final(crc) ? null : 'bad_checksum';
}
