/**
 * Scope patterns. The grammar (docs/protect-routes.md, "Scope patterns"):
 *
 * - a scope is a literal (`reports:read`), matched exactly;
 * - or a pattern: one or more `:`-separated segments followed by a last segment that
 *   is `*` alone (`reports:*`, `reports:eu:*`). It grants every scope that starts with
 *   what precedes the `*` and is longer: `reports:*` grants `reports:read`,
 *   `reports:eu:write` and the narrower pattern `reports:eu:*`, but not `reports`;
 * - nothing else may hold a `*`: no `*` alone (a key that grants every scope would
 *   also grant the management admin scope), no `*` inside a segment or before the last.
 *
 * Route requirements (`@RequireScopes()`) are literals: patterns are what a key holds.
 */

const PATTERN_SUFFIX = ':*';

/** Whether `scope` is a pattern (`<prefix>:*`); assumes it passed {@link scopeGrammarError}. */
export function isScopePattern(scope: string): boolean {
  return scope.endsWith(PATTERN_SUFFIX);
}

/** Why `scope` breaks the wildcard grammar, or `null` when it is a literal or a valid pattern. */
export function scopeGrammarError(scope: string): string | null {
  const star = scope.indexOf('*');
  if (star === -1) return null;
  if (scope === '*') return 'may not be "*" alone: name the scopes, or a pattern such as "reports:*"';
  if (star !== scope.length - 1 || !scope.endsWith(PATTERN_SUFFIX) || scope.length === PATTERN_SUFFIX.length || scope.endsWith('::*')) {
    return 'may use "*" only as a whole last segment after a prefix, as in "reports:*"';
  }
  return null;
}

/**
 * Whether a key holding `held` has `scope`: listed as is, or under one of its patterns.
 * Also answers for a requested pattern (`reports:eu:*` is under `reports:*`), which is
 * what the self-service escalation checks ask. The exact match comes first, so a key
 * without patterns pays one `includes` when it holds the scope.
 */
export function grantsScope(held: readonly string[], scope: string): boolean {
  if (held.includes(scope)) return true;
  for (let i = 0; i < held.length; i++) {
    const pattern = held[i]!;
    // `reports:*` grants what starts with `reports:` and is longer than it.
    if (scope.length >= pattern.length && isScopePattern(pattern) && scope.startsWith(pattern.slice(0, -1))) return true;
  }
  return false;
}

/** Whether `held` grants every scope of `scopes` (see {@link grantsScope}). */
export function grantsEveryScope(held: readonly string[], scopes: readonly string[]): boolean {
  for (let i = 0; i < scopes.length; i++) if (!grantsScope(held, scopes[i]!)) return false;
  return true;
}

/** Whether `held` grants at least one scope of `scopes`. */
export function grantsSomeScope(held: readonly string[], scopes: readonly string[]): boolean {
  for (let i = 0; i < scopes.length; i++) if (grantsScope(held, scopes[i]!)) return true;
  return false;
}
