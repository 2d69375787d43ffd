import { randomBase62, SECRET_LENGTH } from './base62.js';
import { checksum, CHECKSUM_LENGTH, checksumRejection, CRC32_START, crc32Update } from './checksum.js';

/** Why a string is not a key this deployment minted. */
export type KeyRejection = 'not_a_string' | 'wrong_length' | 'wrong_prefix' | 'bad_alphabet' | 'bad_checksum';

/** A parse result: either the key, or the reason it is not one. Never throws. */
export type ParsedKey = { ok: true; key: string } | { ok: false; reason: KeyRejection };

/** Letters, digits and `_`, 1 to 32 characters: safe in headers, URLs and logs. */
const PREFIX_PATTERN = /^[A-Za-z0-9_]{1,32}$/;

/** The length of every key minted with `prefix`. */
export const keyLength = (prefix: string): number => prefix.length + SECRET_LENGTH + CHECKSUM_LENGTH;

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

  /**
   * `parse(input).ok` without allocating a result: what the per-request check uses.
   * The same checks as `rejection`, as one boolean expression: with the reasons'
   * early returns around the inlined loop, V8's optimized code was markedly slower.
   */
  matches(input: unknown): input is string {
    return (
      typeof input === 'string' &&
      input.length === this.length &&
      input.startsWith(this.prefix) &&
      checksumRejection(input, this.prefix.length, this.prefixCrc) === null
    );
  }

  /**
   * Why `input` is not a key of this format, or `null` when it is one. The length and
   * prefix first, then one pass over the rest for the alphabet and the checksum (see
   * `checksumRejection`). A bad character anywhere is reported as `bad_alphabet`
   * before the checksum is compared.
   */
  private rejection(input: unknown): KeyRejection | null {
    if (typeof input !== 'string') return 'not_a_string';
    if (input.length !== this.length) return 'wrong_length';
    if (!input.startsWith(this.prefix)) return 'wrong_prefix';
    return checksumRejection(input, this.prefix.length, this.prefixCrc);
  }

  /** The non-secret hint stored on the record: the prefix, an ellipsis and the last 4 characters. */
  hint(key: string): string {
    return `${this.prefix}…${key.slice(-HINT_LENGTH)}`;
  }
}
