import { ApiKeyValidationError, VersionConflictError } from '../api-key.errors.js';

/** The strong entity tag of a key at `version`, as `ETag` sends it: `"<version>"`. */
export function entityTag(version: number): string {
  return `"${version}"`;
}

const STRONG_TAG = /^"(\d{1,15})"$/;

/**
 * The version a write must be pinned to under the request's `If-Match`, checked
 * against the key's `current` version as just read: `undefined` without the header or
 * for `*` (any version; the key exists, or the caller got 404), the matching version
 * when the list names it, else `VersionConflictError` (412). Pinning the write to that
 * version makes the check and the write one atomic step at the store. Weak tags
 * (`W/"3"`) never match, as RFC 9110 requires of `If-Match`.
 */
export function expectedVersionFromIfMatch(header: unknown, id: string, current: number): number | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string') throw new ApiKeyValidationError('If-Match', 'must be sent once');
  const value = header.trim();
  if (value === '*') return undefined;
  const versions: number[] = [];
  for (const part of value.split(',')) {
    const tag = part.trim();
    if (tag.startsWith('W/"')) continue;
    const match = STRONG_TAG.exec(tag);
    if (!match) throw new ApiKeyValidationError('If-Match', 'must be "*" or a list of entity tags such as "3"');
    versions.push(Number(match[1]));
  }
  if (versions.includes(current)) return current;
  throw new VersionConflictError(id, versions[0] ?? 0, current);
}
