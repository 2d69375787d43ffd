import type { ResolvedApiAuthOptions } from '../api-auth.options.js';

/** What a request carried as a key: a value, nothing, or something that cannot be one. */
export type ExtractedKey =
  | { kind: 'key'; value: string }
  | { kind: 'missing' }
  | { kind: 'malformed'; reason: 'conflicting' | 'multiple' | 'empty_bearer' };

export type Headers = Record<string, string | string[] | undefined>;

export const MISSING: ExtractedKey = { kind: 'missing' };

/**
 * Finds the key in `headers` (and `query`, read only when the `queryParam` option is
 * set). Several sources must agree: see `ApiKeyGuard.extractKey`.
 */
export function extractKey(
  request: Record<string, unknown>,
  headers: Headers,
  query: Record<string, unknown> | undefined,
  options: Pick<ResolvedApiAuthOptions, 'header' | 'schemes' | 'queryParam'>,
): ExtractedKey {
  let found: string | undefined;

  const raw = headers[options.header];
  if (raw !== undefined) {
    if (Array.isArray(raw)) {
      if (raw.length > 1) return { kind: 'malformed', reason: 'multiple' };
      found = nonEmpty(raw[0]);
    } else {
      found = nonEmpty(raw);
    }
  }

  if (options.schemes.length > 0) {
    const authorization = headers.authorization;
    const schemeLength = typeof authorization === 'string' ? acceptedScheme(authorization, options.schemes) : 0;
    if (schemeLength > 0) {
      // Node keeps only the first of several Authorization headers, so a second one
      // is invisible in `headers`; a proxy that honours the last would disagree.
      if (countRawHeader(request, 'authorization') > 1) return { kind: 'malformed', reason: 'multiple' };
      // `empty_bearer` names any accepted scheme sent without a key.
      const token = nonEmpty((authorization as string).slice(schemeLength + 1));
      if (token === undefined) return { kind: 'malformed', reason: 'empty_bearer' };
      if (found !== undefined && found !== token) return { kind: 'malformed', reason: 'conflicting' };
      found = token;
    }
  }

  if (options.queryParam !== false) {
    const value = query?.[options.queryParam];
    if (Array.isArray(value)) return { kind: 'malformed', reason: 'multiple' };
    const token = typeof value === 'string' ? nonEmpty(value) : undefined;
    if (token !== undefined) {
      if (found !== undefined && found !== token) return { kind: 'malformed', reason: 'conflicting' };
      found = token;
    }
  }

  return found === undefined ? MISSING : { kind: 'key', value: found };
}

/**
 * The length of the `Authorization` value's scheme when it is one of `schemes`
 * (lower-cased), else 0. The scheme is case-insensitive (RFC 9110 §11.1) and ends at
 * the first space or the end of the value; other schemes are not ours.
 */
function acceptedScheme(authorization: string, schemes: readonly string[]): number {
  const space = authorization.indexOf(' ');
  const length = space === -1 ? authorization.length : space;
  for (let i = 0; i < schemes.length; i++) {
    const scheme = schemes[i]!;
    if (scheme.length === length && authorization.slice(0, length).toLowerCase() === scheme) return length;
  }
  return 0;
}

/**
 * How many times a header appears in the raw request (Express: `rawHeaders`, Fastify:
 * `raw.rawHeaders`); 1 when the transport does not expose raw headers.
 */
function countRawHeader(request: Record<string, unknown>, name: string): number {
  const carrier = request as { rawHeaders?: unknown; raw?: { rawHeaders?: unknown } };
  const raw = carrier.rawHeaders ?? carrier.raw?.rawHeaders;
  if (!Array.isArray(raw)) return 1;
  let count = 0;
  // rawHeaders alternates names and values.
  for (let i = 0; i < raw.length; i += 2) {
    const header = raw[i];
    if (typeof header === 'string' && header.length === name.length && header.toLowerCase() === name) count++;
  }
  return count;
}

/**
 * The trimmed value, or `undefined` when nothing is left. Node's HTTP headers are
 * always strings, but other carriers (a WebSocket client, a GraphQL context) may hold
 * anything, and a non-string must be refused, not crash the guard with a 500.
 */
function nonEmpty(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed.length === 0 ? undefined : trimmed;
}
