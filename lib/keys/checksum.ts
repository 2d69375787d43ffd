import { crc32 } from 'node:zlib';
import { encodeBase62Fixed } from './base62.js';

/** 62^6 > 2^32, so six base62 characters hold any CRC32 value. */
export const CHECKSUM_LENGTH = 6;

/**
 * The fixed-width base62 CRC32 of `body` (prefix + secret), as GitHub does for its
 * tokens: a typo or a truncated copy is caught offline, and secret scanners can
 * tell a real key from random text without asking us.
 */
export function checksum(body: string): string {
  return encodeBase62Fixed(crc32(body), CHECKSUM_LENGTH);
}
