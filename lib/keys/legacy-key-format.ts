import { HINT_LENGTH } from './key-format.js';

/** Printable ASCII without spaces: what a header value can carry unquoted. */
const LEGACY_KEY = /^[\x21-\x7e]{16,512}$/;

/**
 * Shortest secret (what follows the prefix) whose last characters may be shown: a
 * legacy key has no checksum, so its tail is secret, and four characters of a short
 * secret would give most of it away.
 */
const MIN_SECRET_FOR_TAIL = 16;

/** Throws a configuration error unless `prefixes` is a list of usable legacy prefixes. */
export function assertLegacyPrefixes(prefixes: unknown): asserts prefixes is string[] {
  if (
    !Array.isArray(prefixes) ||
    prefixes.length > 20 ||
    !prefixes.every((p) => typeof p === 'string' && /^[\x21-\x7e]{1,64}$/.test(p))
  ) {
    throw new Error(
      'nestjs-api-auth: option "legacyKeyPrefixes" must be an array of at most 20 prefixes of 1-64 printable ASCII characters.',
    );
  }
}

/**
 * Recognises keys minted by another system and imported with `ApiKeyService.import`:
 * 16-512 printable ASCII characters starting with one of the configured prefixes.
 * They carry no checksum, so a well-shaped guess costs a lookup (the negative cache
 * still absorbs repeats); keys of this library's own format never take this path.
 */
export class LegacyKeyFormat {
  constructor(readonly prefixes: readonly string[]) {}

  /**
   * The display hint of a legacy key: its prefix, an ellipsis and its last four
   * characters, or only the prefix when what follows it is shorter than 16 characters.
   */
  hint(key: string): string {
    const prefix = this.prefixes.find((p) => key.startsWith(p)) ?? '';
    const secret = key.length - prefix.length;
    return secret >= MIN_SECRET_FOR_TAIL ? `${prefix}…${key.slice(-HINT_LENGTH)}` : `${prefix}…`;
  }

  /** Whether `key` has the shape of an imported legacy key. */
  matches(key: string): boolean {
    if (this.prefixes.length === 0 || !LEGACY_KEY.test(key)) return false;
    for (const prefix of this.prefixes) if (key.startsWith(prefix)) return true;
    return false;
  }
}
