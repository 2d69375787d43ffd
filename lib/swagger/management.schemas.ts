import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import { ApiKeyErrorCode } from '../api-key.errors.js';
import type { ResolvedApiAuthRoutesOptions } from '../management/api-auth-routes.options.js';
import { NAME_MAX_LENGTH, OWNER_ID_MAX_LENGTH } from '../management/management.validation.js';
import { policySchema, quotaSchemas } from './policy.schemas.js';
import { MANAGEMENT_SCHEMAS, nullable, nullableRef, ref, type Json } from './schema-helpers.js';

/** `schema` with this deployment's `keyLifetime` said in its description. */
function lifetimeNote(schema: Json, options: ResolvedApiAuthOptions): Json {
  const { defaultMs, maxMs } = options.keyLifetime;
  if (defaultMs === null && maxMs === null) return schema;
  const notes = [
    defaultMs === null ? null : `Default when left out: ${defaultMs} ms from now.`,
    maxMs === null ? null : `At most ${maxMs} ms from now, and required (400 \`validation_failed\` otherwise).`,
  ].filter((note) => note !== null);
  return { ...schema, description: `${String(schema.description ?? '')} ${notes.join(' ')}`.trim() };
}

/** The component schemas of the management routes, reflecting this deployment's limits. */
export function managementSchemas(
  options: ResolvedApiAuthOptions,
  routes: ResolvedApiAuthRoutesOptions,
  oas31: boolean,
): Record<string, Json> {
  const dateTime = { type: 'string', format: 'date-time' };
  const scope: Json = { type: 'string', pattern: '^[\\x21-\\x7e]{1,128}$' };
  if (routes.allowedScopes) scope.enum = [...routes.allowedScopes];
  const scopes = { type: 'array', items: scope, minItems: 1, maxItems: options.maxScopes, uniqueItems: true };
  const name = { type: 'string', minLength: 1, maxLength: NAME_MAX_LENGTH, description: 'A label for humans.' };
  const metadata = {
    type: 'object',
    additionalProperties: true,
    description: `Application data kept with the key; at most ${options.maxMetadataBytes} bytes as JSON.`,
  };
  const environments = options.environments.filter((e): e is string => e !== null);
  const policyInput = (description: string) => nullableRef(MANAGEMENT_SCHEMAS.policy, description, oas31);
  const futureExpiry = nullable(
    { ...dateTime, description: 'When the key stops working; must be in the future. `null`: never.' },
    oas31,
  );
  return {
    [MANAGEMENT_SCHEMAS.apiKey]: {
      type: 'object',
      description: 'An API key record. Never contains the key itself or its hash.',
      additionalProperties: false,
      required: [
        'id', 'name', 'ownerId', 'hint', 'scopes', 'metadata', 'createdAt', 'updatedAt',
        'expiresAt', 'revokedAt', 'lastUsedAt', 'rotatedFromId', 'environment', 'policy', 'version', 'issuedById',
        'disabledAt',
      ],
      properties: {
        id: { type: 'string', format: 'uuid' },
        name: { type: 'string' },
        ownerId: { type: 'string' },
        hint: { type: 'string', description: `Non-secret display hint: the prefix and the last characters, e.g. "${options.prefix}…a1B2".` },
        scopes: { type: 'array', items: { type: 'string' } },
        metadata: { type: 'object', additionalProperties: true },
        createdAt: dateTime,
        updatedAt: dateTime,
        expiresAt: nullable(dateTime, oas31),
        revokedAt: nullable(dateTime, oas31),
        lastUsedAt: nullable({ ...dateTime, description: 'Recorded at most once per usage interval.' }, oas31),
        rotatedFromId: nullable({ type: 'string', description: 'The key this one replaced.' }, oas31),
        environment: nullable(
          { type: 'string', description: "The environment in the key's prefix, e.g. \"live\"; `null` without environments." },
          oas31,
        ),
        policy: nullableRef(MANAGEMENT_SCHEMAS.policy, 'Rate limits, quota and IP allowlist; `null` for none.', oas31),
        version: {
          type: 'integer',
          minimum: 1,
          description: 'Goes up by one with every change. Single-key answers send it as `ETag: "<version>"`; send that back in `If-Match`.',
        },
        issuedById: nullable(
          { type: 'string', description: 'The key that issued this one through these routes; revoking it (cascade) revokes this one.' },
          oas31,
        ),
        disabledAt: nullable(
          { ...dateTime, description: 'When the key was disabled (`POST /{id}/disable`); `null` while enabled. Not final, unlike `revokedAt`.' },
          oas31,
        ),
        quota: nullableRef(
          MANAGEMENT_SCHEMAS.quotaBalance,
          'The quota balance read now from the rate limiter: only in `GET /{id}` and `POST /{id}/quota` answers; ' +
            '`null` without a quota; absent when the limiter cannot say.',
          oas31,
        ),
      },
    },
    ...quotaSchemas(oas31),
    [MANAGEMENT_SCHEMAS.policy]: policySchema(),
    [MANAGEMENT_SCHEMAS.issueRequest]: {
      type: 'object',
      additionalProperties: false,
      // With defaultScopes a key may be issued without naming any.
      required: options.defaultScopes === null ? ['name', 'scopes'] : ['name'],
      properties: {
        ownerId: {
          type: 'string',
          minLength: 1,
          maxLength: OWNER_ID_MAX_LENGTH,
          description: "Who the key acts for. Default: the caller's owner. Self-service keys may only name their own.",
        },
        name,
        scopes: {
          ...scopes,
          description:
            'Scopes granted. A self-service key may only grant scopes it holds.' +
            (options.defaultScopes === null
              ? ''
              : ` Default: ${options.defaultScopes.map((scope) => `"${scope}"`).join(', ') || 'none'} (a self-service key gets those of them it holds).`),
        },
        expiresAt: lifetimeNote(futureExpiry, options),
        metadata,
        // Without environments the only valid value is none, so the field is not offered.
        ...(environments.length === 0
          ? {}
          : {
              environment: {
                type: 'string',
                enum: environments,
                description:
                  `The environment to mint the key in. Default: "${options.environment}" for admin keys; ` +
                  "a self-service key always mints in its own.",
              },
            }),
        policy: policyInput(
          'Admin keys only (403 `forbidden_policy` otherwise). A key issued by a self-service key gets that key\'s ' +
            'policy, sharing its counters.',
        ),
      },
    },
    [MANAGEMENT_SCHEMAS.updateRequest]: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: {
        name,
        scopes,
        expiresAt: lifetimeNote(futureExpiry, options),
        metadata,
        policy: policyInput('Replaces the whole policy; `null` removes it. Admin keys only (403 `forbidden_policy` otherwise).'),
      },
    },
    [MANAGEMENT_SCHEMAS.rotateRequest]: {
      type: 'object',
      additionalProperties: false,
      properties: {
        gracePeriodMs: {
          type: 'integer',
          minimum: 0,
          maximum: routes.maxGracePeriodMs,
          default: 0,
          description: 'How long the old key keeps working, in milliseconds.',
        },
        name: { ...name, description: "Name of the new key. Default: the old key's name." },
      },
    },
    [MANAGEMENT_SCHEMAS.issued]: {
      type: 'object',
      required: ['key', 'apiKey'],
      properties: {
        key: {
          type: 'string',
          description: `The plaintext key (prefix "${options.prefix}"). Shown in this response only; store it now.`,
        },
        apiKey: ref(MANAGEMENT_SCHEMAS.apiKey),
      },
    },
    [MANAGEMENT_SCHEMAS.rotated]: {
      type: 'object',
      required: ['key', 'apiKey', 'previous'],
      properties: {
        key: { type: 'string', description: 'The replacement key, in plaintext. Shown in this response only.' },
        apiKey: ref(MANAGEMENT_SCHEMAS.apiKey),
        previous: { ...ref(MANAGEMENT_SCHEMAS.apiKey) },
      },
    },
    [MANAGEMENT_SCHEMAS.page]: {
      type: 'object',
      required: ['items', 'nextCursor', 'total'],
      properties: {
        items: { type: 'array', items: ref(MANAGEMENT_SCHEMAS.apiKey) },
        nextCursor: nullable({ type: 'string', description: 'Pass as `cursor` for the next page; `null` on the last.' }, oas31),
        total: { type: 'integer', minimum: 0, description: "Number of the owner's keys." },
      },
    },
    [MANAGEMENT_SCHEMAS.allPage]: {
      type: 'object',
      description: 'A page of the listing across owners (`all=true`), newest first. No total.',
      additionalProperties: false,
      required: ['items', 'nextCursor'],
      properties: {
        items: { type: 'array', items: ref(MANAGEMENT_SCHEMAS.apiKey) },
        nextCursor: nullable({ type: 'string', description: 'Pass as `cursor` (with the same filters) for the next page; `null` on the last.' }, oas31),
      },
    },
    [MANAGEMENT_SCHEMAS.error]: {
      type: 'object',
      required: ['statusCode', 'error', 'code', 'message'],
      properties: {
        statusCode: { type: 'integer' },
        error: { type: 'string' },
        code: {
          type: 'string',
          description:
            'Stable machine-readable code: missing_api_key, invalid_api_key, expired_api_key, revoked_api_key, disabled_api_key, ' +
            'insufficient_scope, ip_not_allowed, environment_not_allowed, rate_limited, quota_exhausted, ' +
            'backend_unavailable, not_found, already_rotated, version_conflict, forbidden_owner, scope_escalation, forbidden_policy, ' +
            'forbidden_environment, key_revoked, list_all_unsupported.',
        },
        message: { type: 'string' },
        replacementId: { type: 'string', description: 'On already_rotated: the key that replaced this one.' },
        requiredScopes: { type: 'array', items: { type: 'string' }, description: 'On insufficient_scope: what the route needs.' },
        scopeMatch: { type: 'string', enum: ['all', 'any'] },
        requiredEnvironments: {
          type: 'array',
          items: { type: 'string' },
          description: 'On environment_not_allowed: the environments the route accepts.',
        },
      },
    },
    // The guard's 429 body is the shared error body narrowed to its two codes, plus the
    // wait; composing it keeps one definition of the fields every refusal carries.
    [MANAGEMENT_SCHEMAS.limitError]: {
      description: 'A 429: the key used up a rate limit (`rate_limited`) or its quota (`quota_exhausted`).',
      allOf: [
        ref(MANAGEMENT_SCHEMAS.error),
        {
          type: 'object',
          properties: {
            statusCode: { type: 'integer', enum: [429] },
            error: { type: 'string', enum: ['Too Many Requests'] },
            code: { type: 'string', enum: [ApiKeyErrorCode.RateLimited, ApiKeyErrorCode.QuotaExhausted] },
            retryAfterSeconds: {
              type: 'integer',
              minimum: 1,
              description: 'Seconds until a retry can succeed, as in `Retry-After`. Absent when a quota never refills.',
            },
          },
        },
      ],
    },
    [MANAGEMENT_SCHEMAS.validationError]: {
      type: 'object',
      required: ['statusCode', 'error', 'code', 'field', 'message'],
      properties: {
        statusCode: { type: 'integer', enum: [400] },
        error: { type: 'string', enum: ['Bad Request'] },
        code: { type: 'string', enum: ['validation_failed'] },
        field: { type: 'string', description: 'The request field at fault (`body` for the body as a whole).' },
        message: { type: 'string' },
      },
    },
  };
}
