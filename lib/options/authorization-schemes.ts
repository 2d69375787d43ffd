/** An HTTP token (RFC 9110 §5.6.2), as an `Authorization` scheme name must be. */
const SCHEME_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,32}$/;

function fail(expectation: string, value: unknown): never {
  const shown = typeof value === 'string' || typeof value === 'number' ? JSON.stringify(value) : typeof value;
  throw new Error(`nestjs-api-auth: option "schemes" ${expectation} (got ${shown}).`);
}

/**
 * The `schemes` option, lower-cased, reconciled with `bearer` (which it generalises):
 * default `['bearer']`, `[]` with `bearer: false`; a list that contradicts an explicit
 * `bearer` is refused at start-up rather than one of them silently winning.
 */
export function resolveSchemes(schemes: unknown, bearer: unknown): string[] {
  if (schemes === undefined) return bearer === false ? [] : ['bearer'];
  if (!Array.isArray(schemes)) fail('must be an array of Authorization scheme names', schemes);
  const lower: string[] = [];
  for (const scheme of schemes) {
    if (typeof scheme !== 'string' || !SCHEME_NAME.test(scheme)) {
      fail('must hold scheme names of 1-32 letters, digits or "!#$%&\'*+.^_`|~-"', scheme);
    }
    if (lower.includes(scheme.toLowerCase())) fail('must list each scheme once (names are case-insensitive)', scheme);
    lower.push(scheme.toLowerCase());
  }
  if (bearer === false && lower.length > 0) {
    fail('cannot be given with "bearer: false"; list the schemes you want, or [] for none', schemes.join(','));
  }
  if (bearer === true && !lower.includes('bearer')) {
    fail('must include "Bearer" when "bearer" is true; leave "bearer" out', schemes.join(','));
  }
  return lower;
}
