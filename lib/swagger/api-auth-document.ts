import type { INestApplication } from '@nestjs/common';
import { isDeepStrictEqual } from 'node:util';
import {
  DECORATORS,
  SwaggerModule,
  type OpenAPIObject,
  type OperationObject,
  type SwaggerDocumentOptions,
} from '@nestjs/swagger';
import { API_AUTH_OPTIONS } from '../api-auth.constants.js';
import { API_AUTH_MODULE_OPTIONS } from '../api-auth.module-definition.js';
import type { ApiAuthModuleOptions, ResolvedApiAuthOptions } from '../api-auth.options.js';
import { API_AUTH_ROUTES_OPTIONS, type ResolvedApiAuthRoutesOptions } from '../management/api-auth-routes.options.js';
import { findApiKeyRoutes, type ApiKeyRoute, type MetadataTarget } from './guarded-routes.js';
import { managementOperation } from './management.openapi.js';
import { managementSchemas } from './management.schemas.js';
import { MANAGEMENT_SCHEMAS, ref } from './schema-helpers.js';

/** Options of {@link createApiAuthDocument}. */
export interface ApiAuthDocumentOptions {
  /** Passed to `SwaggerModule.createDocument` as is. */
  swagger?: SwaggerDocumentOptions;
  /**
   * Name of the header security scheme in `components.securitySchemes`. Default: the
   * configured header name, e.g. `"X-API-Key"`.
   */
  headerSchemeName?: string;
  /** Name of the `Authorization: Bearer` scheme, registered when `bearer` is on. Default `"bearer"`. */
  bearerSchemeName?: string;
  /** Name of the query-parameter scheme, registered when `queryParam` is set. Default `"api-key-query"`. */
  querySchemeName?: string;
  /** Tag of the key-management operations. Default `"API keys"`. */
  managementTag?: string;
}

type Json = Record<string, any>;

/** Extension the marked operations carry between scanning and post-processing; removed before returning. */
const MARKER = 'x-nestjs-api-auth';
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/**
 * Builds the OpenAPI document of `app` with `SwaggerModule.createDocument` and adds
 * API-key authentication to it: the security schemes under the configured header
 * (and bearer / query when enabled), and security plus 401/403/429/503 responses on
 * exactly the operations `ApiKeyGuard` protects (public routes stay public), the
 * optional `RateLimit-*` headers on their success responses, and full schemas for
 * the key-management routes.
 *
 * ```ts
 * const document = createApiAuthDocument(app, new DocumentBuilder().setTitle('API').build());
 * SwaggerModule.setup('docs', app, document);
 * ```
 */
export function createApiAuthDocument(
  app: INestApplication,
  config: Omit<OpenAPIObject, 'paths'>,
  options: ApiAuthDocumentOptions = {},
): OpenAPIObject {
  const auth = app.get<ResolvedApiAuthOptions>(API_AUTH_OPTIONS, { strict: false });
  const raw = app.get<ApiAuthModuleOptions>(API_AUTH_MODULE_OPTIONS, { strict: false });
  let routesOptions: ResolvedApiAuthRoutesOptions | null = null;
  try {
    routesOptions = app.get<ResolvedApiAuthRoutesOptions>(API_AUTH_ROUTES_OPTIONS, { strict: false });
  } catch {
    // The management routes are off.
  }

  const routes = findApiKeyRoutes(app).filter((route) => route.guarded);
  const document = withMarkers(routes, () => SwaggerModule.createDocument(app, config, options.swagger));
  const oas31 = /^3\.[1-9]/.test(document.openapi ?? '');

  // The header as the app spelled it (the resolved options keep it lower-cased for matching).
  const header = raw?.header ?? (auth.header === 'x-api-key' ? 'X-API-Key' : auth.header);
  const schemes = {
    header: options.headerSchemeName ?? header,
    bearer: auth.bearer ? (options.bearerSchemeName ?? 'bearer') : null,
    query: auth.queryParam === false ? null : (options.querySchemeName ?? 'api-key-query'),
  };
  const components = (document.components ??= {});
  const securitySchemes = (components.securitySchemes ??= {});
  securitySchemes[schemes.header] = {
    type: 'apiKey',
    in: 'header',
    name: header,
    description: `An API key of this deployment (prefix "${auth.prefix}").`,
  };
  if (schemes.bearer) {
    securitySchemes[schemes.bearer] = { type: 'http', scheme: 'bearer', description: 'The same API key, as a bearer token.' };
  }
  if (schemes.query && auth.queryParam !== false) {
    securitySchemes[schemes.query] = { type: 'apiKey', in: 'query', name: auth.queryParam };
  }
  // Other `Authorization` schemes (`schemes: ['Bearer', 'Api-Key']`): OpenAPI's `http`
  // type names only registered schemes, so each is the Authorization header, described.
  const otherSchemes = auth.schemes
    .filter((scheme) => scheme !== 'bearer')
    .map((scheme) => {
      const name = `authorization-${scheme}`;
      securitySchemes[name] = {
        type: 'apiKey',
        in: 'header',
        name: 'Authorization',
        description: `The same API key as \`Authorization: ${raw?.schemes?.find((s) => s.toLowerCase() === scheme) ?? scheme} <key>\`.`,
      };
      return name;
    });
  const requirements = [schemes.header, schemes.bearer, ...otherSchemes, schemes.query]
    .filter((name): name is string => name !== null)
    .map((name) => ({ [name]: [] as string[] }));

  let managementUsed = false;
  let securedCount = 0;
  for (const pathItem of Object.values(document.paths ?? {})) {
    for (const method of HTTP_METHODS) {
      const operation = pathItem[method] as (OperationObject & Json) | undefined;
      const marker = operation?.[MARKER] as Marker | undefined;
      if (!operation || !marker) continue;
      delete operation[MARKER];
      if (marker.management && routesOptions) {
        const described = managementOperation(marker.management, routesOptions);
        if (described) {
          managementUsed = true;
          describeManagement(operation, described, options.managementTag ?? 'API keys');
        }
      }
      secure(operation, marker, requirements);
      securedCount++;
    }
  }

  if (securedCount > 0) {
    const all = managementSchemas(auth, routesOptions ?? NO_ROUTES, oas31);
    const needed = managementUsed ? Object.keys(all) : [MANAGEMENT_SCHEMAS.error, MANAGEMENT_SCHEMAS.limitError];
    const schemas = (components.schemas ??= {}) as Record<string, Json>;
    for (const name of needed) {
      if (schemas[name] !== undefined && !isDeepStrictEqual(schemas[name], all[name])) {
        throw new Error(
          `nestjs-api-auth: the OpenAPI document already defines a schema named "${name}"; ` +
            'rename yours, the API-key documentation needs this one.',
        );
      }
      schemas[name] = all[name]!;
    }
  }
  return document;
}

/** Stand-in limits for the error schema when the management routes are off; only the error schema is used then. */
const NO_ROUTES: ResolvedApiAuthRoutesOptions = {
  path: '',
  adminScope: null,
  selfServiceScope: null,
  allowedScopes: null,
  defaultPageSize: 1,
  maxPageSize: 1,
  maxGracePeriodMs: 0,
};

interface Marker {
  optional?: boolean;
  scopes?: string[];
  match?: 'all' | 'any';
  environments?: string[];
  management?: string;
}

/**
 * Runs `scan` with a marker extension on every guarded handler, so Swagger itself
 * maps handlers to paths (global prefix, versions, aliases and all), then restores
 * the handlers' metadata exactly as it was.
 */
function withMarkers<T>(routes: ApiKeyRoute[], scan: () => T): T {
  const saved = new Map<MetadataTarget, unknown>();
  try {
    for (const route of routes) {
      if (saved.has(route.handler)) continue;
      saved.set(route.handler, Reflect.getOwnMetadata(DECORATORS.API_EXTENSION, route.handler));
      const marker: Marker = {
        ...(route.requirement ? { scopes: [...route.requirement.scopes], match: route.requirement.match } : {}),
        ...(route.environments ? { environments: [...route.environments] } : {}),
        ...(route.optional ? { optional: true } : {}),
        ...(route.management ? { management: route.management } : {}),
      };
      const previous = (saved.get(route.handler) as Json | undefined) ?? {};
      Reflect.defineMetadata(DECORATORS.API_EXTENSION, { ...previous, [MARKER]: marker }, route.handler);
    }
    return scan();
  } finally {
    for (const [handler, previous] of saved) {
      if (previous === undefined) Reflect.deleteMetadata(DECORATORS.API_EXTENSION, handler);
      else Reflect.defineMetadata(DECORATORS.API_EXTENSION, previous, handler);
    }
  }
}

/**
 * `RateLimit-*` and `X-Quota-*` as the guard sends them (`setRateLimitHeaders`,
 * `setQuotaHeaders`): only for keys with rate limits or a quota, so optional, which is
 * what an OpenAPI header is unless `required`.
 */
const RATE_LIMIT_HEADERS: Json = {
  'RateLimit-Limit': {
    description: "Requests allowed per window by the key's rate limit closest to running out. Only for keys with rate limits.",
    schema: { type: 'integer', minimum: 1 },
  },
  'RateLimit-Remaining': {
    description: 'Requests left in that window. Only for keys with rate limits.',
    schema: { type: 'integer', minimum: 0 },
  },
  'RateLimit-Reset': {
    description: 'Seconds until that window ends. Only for keys with rate limits.',
    schema: { type: 'integer', minimum: 1 },
  },
  'X-Quota-Remaining': {
    description: "Credits left in the key's quota after this call. Only for keys with a quota.",
    schema: { type: 'integer', minimum: 0 },
  },
  'X-Quota-Reset': {
    description: "Seconds until the key's quota refills. Only for keys whose quota refills.",
    schema: { type: 'integer', minimum: 1 },
  },
};

/**
 * Adds the security requirement, the guard's 401/403/429/503 answers (keeping any the
 * app documented itself) and the `RateLimit-*` headers the guard sets on the way through.
 */
function secure(operation: OperationObject & Json, marker: Marker, requirements: Array<Record<string, string[]>>): void {
  const security = [...(operation.security ?? [])];
  for (const requirement of requirements) {
    if (!security.some((existing) => isDeepStrictEqual(existing, requirement))) security.push(requirement);
  }
  // `@OptionalApiKey()`: the empty requirement is OpenAPI's "no credentials also do".
  if (marker.optional && !security.some((existing) => Object.keys(existing).length === 0)) security.push({});
  operation.security = security;

  const error = ref(MANAGEMENT_SCHEMAS.error);
  const content = { 'application/json': { schema: error } };
  const responses = (operation.responses ??= {});
  responses['401'] ??= {
    description: marker.optional
      ? 'A key was sent and is malformed, unknown, expired, revoked or disabled (see `code`); calls without a key go through.'
      : 'No API key, or a malformed, unknown, expired, revoked or disabled one (see `code`).',
    headers: { 'WWW-Authenticate': { schema: { type: 'string' } } },
    content,
  };
  // Any guarded route refuses a key whose IP allowlist leaves the caller out; the
  // route's own rules add the scope and environment refusals.
  const refusals = ['ip_not_allowed: the key has an IP allowlist that does not include the caller.'];
  if (marker.environments) {
    refusals.push(`environment_not_allowed: the key's environment must be one of: ${marker.environments.join(', ')}.`);
  }
  if (marker.scopes) {
    const needs = marker.match === 'any' ? 'one of' : 'all of';
    refusals.push(`insufficient_scope: the key must hold ${needs}: ${marker.scopes.join(', ')}.`);
    operation['x-required-scopes'] = { scopes: marker.scopes, match: marker.match };
  }
  responses['403'] ??= { description: refusals.join(' '), content };
  responses['429'] ??= {
    description:
      'rate_limited: a rate limit of the key is used up; quota_exhausted: its quota cannot pay for this call. ' +
      'Only keys with a policy get it.',
    headers: {
      'Retry-After': {
        description: 'Seconds until a retry can succeed; absent when a quota never refills.',
        schema: { type: 'integer', minimum: 1 },
      },
      ...RATE_LIMIT_HEADERS,
    },
    content: { 'application/json': { schema: ref(MANAGEMENT_SCHEMAS.limitError) } },
  };
  responses['503'] ??= {
    description: 'The key store could not answer; retry later. Never means the key is bad.',
    headers: { 'Retry-After': { schema: { type: 'integer' } } },
    content,
  };
  const success = responses as Record<string, Json>;
  for (const [status, response] of Object.entries(success)) {
    // A `$ref` response is shared with other operations, maybe unguarded ones: left alone.
    if (!status.startsWith('2') || '$ref' in response) continue;
    // A new object: the management descriptions share response objects between routes.
    success[status] = { ...response, headers: { ...RATE_LIMIT_HEADERS, ...response.headers } };
  }
}

/** Replaces what Swagger inferred from the untyped handler with the route's full description. */
function describeManagement(operation: OperationObject & Json, described: Json, tag: string): void {
  const { responses, ...rest } = described;
  Object.assign(operation, rest);
  if (!described.requestBody) delete operation.requestBody;
  if (!described.parameters) operation.parameters = [];
  operation.responses = { ...responses };
  // One tag for the whole group, instead of the one Swagger derives from the class name.
  operation.tags = [tag];
}
