import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';

/** Options of the opt-in key-management routes: `ApiAuthModule.forRoot({ routes: { ... } })`. */
export interface ApiAuthRoutesOptions {
  /**
   * Path of the routes, relative to the global prefix. Default `"api-keys"`, giving
   * `POST /api-keys`, `GET /api-keys/:id`, and so on.
   */
  path?: string;
  /**
   * Scope that lets a key manage every key of every owner. Default `"api-keys:admin"`;
   * `null` disables admin access (then `selfServiceScope` must be set).
   */
  adminScope?: string | null;
  /**
   * Scope that lets a key manage the keys of its own owner, and grant only scopes it
   * holds itself. Default `"api-keys:self"`; `null` disables self-service.
   */
  selfServiceScope?: string | null;
  /**
   * Scope of a read-only operator: a key holding it (and neither of the scopes above)
   * may list and get every owner's keys, the listing across owners (`?all=true`)
   * included, and nothing else; every write answers 403 `insufficient_scope`. Default
   * `"api-keys:read"`; `null` turns read-only access off.
   */
  readScope?: string | null;
  /**
   * Scopes a key may be granted through these routes. When set, any other scope in a
   * request body is a 400. Default: any well-formed scope (still bounded, for
   * self-service keys, by the caller's own scopes).
   */
  allowedScopes?: readonly string[];
  /** Page size of `GET /` when the request names none. Default `20`. */
  defaultPageSize?: number;
  /** Largest `limit` a client may ask for. Default `100`. */
  maxPageSize?: number;
  /**
   * Longest grace period `POST /:id/rotate` accepts, in milliseconds. Default seven
   * days: an old key that keeps working for longer is a revocation that did not happen.
   */
  maxGracePeriodMs?: number;
  /**
   * Serves the operator console, a small browser page for these routes, at
   * `GET <path>/console`. Default `false`. The page itself is public and holds nothing:
   * the operator pastes a key, which stays in the page's memory, and every action goes
   * through the guarded routes above. It is sent with a strict Content-Security-Policy
   * and may not be framed.
   */
  console?: boolean;
}

/** Routes options after defaults and validation. */
export interface ResolvedApiAuthRoutesOptions {
  /** Without leading or trailing slashes. */
  path: string;
  adminScope: string | null;
  selfServiceScope: string | null;
  /** Absent in options resolved by code written before it existed: no read-only access. */
  readScope?: string | null;
  allowedScopes: ReadonlySet<string> | null;
  defaultPageSize: number;
  maxPageSize: number;
  maxGracePeriodMs: number;
  /** Whether `GET <path>/console` serves the operator console; absent means no. */
  console?: boolean;
}

/** Injection token of the {@link ResolvedApiAuthRoutesOptions}, provided only when the routes are enabled. */
export const API_AUTH_ROUTES_OPTIONS = Symbol('API_AUTH_ROUTES_OPTIONS');

export const DEFAULT_ROUTES_PATH = 'api-keys';
export const DEFAULT_ADMIN_SCOPE = 'api-keys:admin';
export const DEFAULT_SELF_SERVICE_SCOPE = 'api-keys:self';
export const DEFAULT_READ_SCOPE = 'api-keys:read';

const ROUTES_OPTION_NAMES = optionNames<ApiAuthRoutesOptions>({
  path: true,
  adminScope: true,
  selfServiceScope: true,
  readScope: true,
  allowedScopes: true,
  defaultPageSize: true,
  maxPageSize: true,
  maxGracePeriodMs: true,
  console: true,
});

const SEVEN_DAYS_MS = 7 * 24 * 60 * 60 * 1000;
const PATH_SEGMENT = /^[A-Za-z0-9._~-]+$/;
const SCOPE_PATTERN = /^[\x21-\x7e]{1,128}$/;

function fail(option: string, expectation: string, value: unknown): never {
  const shown = typeof value === 'string' || typeof value === 'number' ? JSON.stringify(value) : typeof value;
  throw new Error(`nestjs-api-auth: option "routes.${option}" ${expectation} (got ${shown}).`);
}

function scopeOption(option: string, value: unknown, fallback: string): string | null {
  if (value === undefined) return fallback;
  // An empty string is treated like null: it can never be held, so it grants nothing.
  if (value === null || value === '') return null;
  if (typeof value !== 'string' || !SCOPE_PATTERN.test(value)) {
    fail(option, 'must be null or a scope of 1-128 printable ASCII characters without spaces', value);
  }
  return value;
}

function pageOption(option: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    fail(option, `must be an integer from 1 to ${max}`, value);
  }
  return value;
}

/**
 * Validates the `routes` option; `null` when the routes are off. Runs when
 * `forRoot`/`forRootAsync` is called, so a configuration that could leave the routes
 * unusable or ambiguous stops the application before it starts.
 */
export function resolveApiAuthRoutesOptions(
  routes: ApiAuthRoutesOptions | boolean | undefined | null,
): ResolvedApiAuthRoutesOptions | null {
  if (routes === undefined || routes === null || routes === false) return null;
  const options: ApiAuthRoutesOptions = routes === true ? {} : routes;
  if (typeof options !== 'object') fail('', 'must be true, false or an options object', options);
  assertKnownOptions(options, ROUTES_OPTION_NAMES, { path: 'routes.' });

  const rawPath = options.path ?? DEFAULT_ROUTES_PATH;
  if (typeof rawPath !== 'string') fail('path', 'must be a string', rawPath);
  const path = rawPath.replace(/^\/+|\/+$/g, '');
  const segmentOk = (segment: string) => PATH_SEGMENT.test(segment) && !/^\.+$/.test(segment);
  if (path.length === 0 || path.length > 200 || !path.split('/').every(segmentOk)) {
    fail('path', 'must be a non-empty URL path of letters, digits, ".", "_", "~", "-" and "/"', rawPath);
  }

  const adminScope = scopeOption('adminScope', options.adminScope, DEFAULT_ADMIN_SCOPE);
  const selfServiceScope = scopeOption('selfServiceScope', options.selfServiceScope, DEFAULT_SELF_SERVICE_SCOPE);
  if (adminScope === null && selfServiceScope === null) {
    throw new Error(
      'nestjs-api-auth: the key-management routes are enabled but both "routes.adminScope" and ' +
        '"routes.selfServiceScope" are null, so no key could ever be authorized to use them. ' +
        'Set at least one of them, or disable the routes with "routes: false".',
    );
  }
  if (adminScope !== null && adminScope === selfServiceScope) {
    throw new Error(
      `nestjs-api-auth: "routes.adminScope" and "routes.selfServiceScope" must differ (both are ${JSON.stringify(adminScope)}): ` +
        'a self-service key would otherwise manage every owner\'s keys.',
    );
  }

  const readScope = scopeOption('readScope', options.readScope, DEFAULT_READ_SCOPE);
  if (readScope !== null && (readScope === adminScope || readScope === selfServiceScope)) {
    throw new Error(
      `nestjs-api-auth: "routes.readScope" must differ from "routes.adminScope" and "routes.selfServiceScope" (got ${JSON.stringify(readScope)}): ` +
        'a read-only key would otherwise be able to write.',
    );
  }

  let allowedScopes: ReadonlySet<string> | null = null;
  if (options.allowedScopes !== undefined) {
    if (!Array.isArray(options.allowedScopes) || options.allowedScopes.length === 0) {
      fail('allowedScopes', 'must be a non-empty array of scopes', options.allowedScopes);
    }
    for (const scope of options.allowedScopes) {
      if (typeof scope !== 'string' || !SCOPE_PATTERN.test(scope)) {
        fail('allowedScopes', 'must hold scopes of 1-128 printable ASCII characters without spaces', scope);
      }
    }
    allowedScopes = new Set(options.allowedScopes);
  }

  const maxPageSize = pageOption('maxPageSize', options.maxPageSize, 100, 1000);
  const defaultPageSize = pageOption('defaultPageSize', options.defaultPageSize, Math.min(20, maxPageSize), maxPageSize);
  const maxGracePeriodMs = options.maxGracePeriodMs ?? SEVEN_DAYS_MS;
  if (typeof maxGracePeriodMs !== 'number' || !Number.isSafeInteger(maxGracePeriodMs) || maxGracePeriodMs < 0) {
    fail('maxGracePeriodMs', 'must be a non-negative integer of milliseconds', maxGracePeriodMs);
  }

  const serveConsole = options.console ?? false;
  if (typeof serveConsole !== 'boolean') fail('console', 'must be true or false', serveConsole);

  return { path, adminScope, selfServiceScope, readScope, allowedScopes, defaultPageSize, maxPageSize, maxGracePeriodMs, console: serveConsole };
}
