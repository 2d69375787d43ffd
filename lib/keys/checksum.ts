import { encodeBase62Fixed } from './base62.js';

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

/** Feeds one byte (an ASCII character code) into a CRC register. */
export const crc32Byte = (crc: number, byte: number): number => TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);

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
