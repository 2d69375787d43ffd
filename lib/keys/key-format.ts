import { base62Digit, randomBase62, SECRET_LENGTH } from './base62.js';
import { checksum, CHECKSUM_LENGTH, CRC32_START, crc32Byte, crc32Final, crc32Update } from './checksum.js';

/** Why a string is not a key this deployment minted. */
export type KeyRejection = 'not_a_string' | 'wrong_length' | 'wrong_prefix' | 'bad_alphabet' | 'bad_checksum';

/** A parse result: either the key, or the reason it is not one. Never throws. */
export type ParsedKey = { ok: true; key: string } | { ok: false; reason: KeyRejection };

/** Letters, digits and `_`, 1 to 32 characters: safe in headers, URLs and logs. */
const PREFIX_PATTERN = /^[A-Za-z0-9_]{1,32}$/;

/** The length of every key minted with `prefix`. */
export const keyLength = (prefix: string): number => prefix.length + SECRET_LENGTH + CHECKSUM_LENGTH;

/**
 * `String.prototype.charCodeAt`, called as `charCodeAt.call(input, i)` in the per-request
 * check. Written `input.charCodeAt(i)`, every call loads the method from the string,
 * and V8 caches that load by the string's representation (flat, concatenated, sliced,
 * internalized...). Header values reach the check in several, so the cache went
 * generic and each character cost a lookup: about 6,000 instructions per malformed
 * key on Express. With the method fixed, the optimizing compiler calls the builtin
 * directly whatever the string's shape.
 */
const charCodeAt = String.prototype.charCodeAt;

/** Number of trailing characters kept, in clear, in a record's display hint. */
export const HINT_LENGTH = 4;

/** Throws a plain `Error` naming the option when `prefix` cannot be used. */
export function assertValidPrefix(prefix: unknown, option = 'prefix'): asserts prefix is string {
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new Error(
      `nestjs-api-auth: option "${option}" must be 1-32 characters of letters, digits and "_" (got ${JSON.stringify(prefix)}).`,
    );
  }
}

/**
 * Mints and recognises keys of the form `<prefix><secret><checksum>`: a 43-character
 * base62 secret (256 bits from the CSPRNG) and a 6-character base62 CRC32 of what
 * precedes it.
 */
export class KeyFormat {
  /** Exact length of every key of this format. */
  readonly length: number;
  /** The CRC register after the prefix, which every key of this format starts with. */
  private readonly prefixCrc: number;

  constructor(readonly prefix: string) {
    assertValidPrefix(prefix);
    this.length = keyLength(prefix);
    this.prefixCrc = crc32Update(CRC32_START, prefix, 0, prefix.length);
  }

  /** A new plaintext key. */
  generate(): string {
    const body = this.prefix + randomBase62(SECRET_LENGTH);
    return body + checksum(body);
  }

  /**
   * Says whether `input` is a key of this format and, if not, why. The length is
   * checked first, so a 64 kB header costs one comparison; everything after that
   * works on exactly `length` characters.
   */
  parse(input: unknown): ParsedKey {
    const reason = this.rejection(input);
    return reason === null ? { ok: true, key: input as string } : { ok: false, reason };
  }

  /** `parse(input).ok` without allocating a result: what the per-request check uses. */
  matches(input: unknown): input is string {
    return this.rejection(input) === null;
  }

  /**
   * Why `input` is not a key of this format, or `null` when it is one. One pass over
   * the secret checks the alphabet and runs the CRC; the checksum characters are
   * decoded to a number and compared, so a check allocates nothing. (A bad character
   * anywhere is reported as `bad_alphabet` before the checksum is compared.)
   */
  private rejection(input: unknown): KeyRejection | null {
    if (typeof input !== 'string') return 'not_a_string';
    const length = this.length;
    if (input.length !== length) return 'wrong_length';
    if (!input.startsWith(this.prefix)) return 'wrong_prefix';
    const split = length - CHECKSUM_LENGTH;
    let crc = this.prefixCrc;
    // Each character is read once, for the alphabet and the CRC: reading it again in
    // the CRC made the whole check take 150-190 ns per key instead of 110-120.
    for (let i = this.prefix.length; i < split; i++) {
      const c = charCodeAt.call(input, i);
      if (base62Digit(c) < 0) return 'bad_alphabet';
      crc = crc32Byte(crc, c);
    }
    let stated = 0;
    for (let i = split; i < length; i++) {
      const digit = base62Digit(charCodeAt.call(input, i));
      if (digit < 0) return 'bad_alphabet';
      stated = stated * 62 + digit;
    }
    return stated === crc32Final(crc) ? null : 'bad_checksum';
  }

  /** The non-secret hint stored on the record: the prefix, an ellipsis and the last 4 characters. */
  hint(key: string): string {
    return `${this.prefix}…${key.slice(-HINT_LENGTH)}`;
  }
}
