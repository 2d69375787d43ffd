import type { ResolvedApiAuthRoutesOptions } from '../management/api-auth-routes.options.js';
import { MANAGEMENT_SCHEMAS, ref, type Json } from './schema-helpers.js';

// The management routes' operations (paths); their component schemas are in management.schemas.ts.

const json = (schema: Json): Json => ({ 'application/json': { schema } });
const response = (description: string, schema?: Json, headers?: Json): Json => ({
  description,
  ...(schema ? { content: json(schema) } : {}),
  ...(headers ? { headers } : {}),
});
const noStore = { 'Cache-Control': { schema: { type: 'string', enum: ['no-store'] } } };
const withETag = {
  ...noStore,
  ETag: { schema: { type: 'string', example: '"3"' }, description: "The key's `version` as a strong entity tag; send it back in `If-Match`." },
};
const ifMatchParameter = {
  name: 'If-Match',
  in: 'header',
  required: false,
  schema: { type: 'string', example: '"3"' },
  description:
    'Write only if the key is still at this version: an `ETag` from an earlier answer, a comma list of them, or `*`. ' +
    'Without it the write is still partial and atomic.',
};
const versionConflict = response(
  'version_conflict: `If-Match` names a version the key no longer has; read it again and retry. Nothing was written.',
  ref(MANAGEMENT_SCHEMAS.error),
);
const idParameter = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string' },
  description: 'The key id.',
};
const badRequest = response('The body or query is invalid; `field` names what is wrong.', ref(MANAGEMENT_SCHEMAS.validationError));
const notFound = response(
  "No key with this id, or (for a self-service key) another owner's key.",
  ref(MANAGEMENT_SCHEMAS.error),
);
const alreadyRotated = response(
  'already_rotated: the key was rotated before (or by a concurrent request); `replacementId` names its replacement.',
  ref(MANAGEMENT_SCHEMAS.error),
);
const forbiddenOwner = response(
  'insufficient_scope: the key holds neither management scope; forbidden_owner / scope_escalation / forbidden_policy / ' +
    'forbidden_environment / forbidden_expiry: a self-service key reached past its own owner, scopes, policy, environment ' +
    'or expiry (see SECURITY.md, "Self-service rules").',
  ref(MANAGEMENT_SCHEMAS.error),
);

/**
 * The documented shape of one management route (the parts Swagger cannot infer from
 * an untyped handler): summary, parameters, body and responses.
 */
export function managementOperation(route: string, routes: ResolvedApiAuthRoutesOptions): Json | undefined {
  const resource = ref(MANAGEMENT_SCHEMAS.apiKey);
  const body = (name: string, required: boolean) => ({ required, content: json(ref(name)) });
  switch (route) {
    case 'issue':
      return {
        summary: 'Issue an API key',
        description: 'Mints a key. The plaintext `key` is in this response and never again.',
        requestBody: body(MANAGEMENT_SCHEMAS.issueRequest, true),
        responses: { 201: response('The new key, with its plaintext.', ref(MANAGEMENT_SCHEMAS.issued), withETag), 400: badRequest, 403: forbiddenOwner },
      };
    case 'list':
      return {
        summary: "List an owner's API keys, or every owner's",
        description:
          "Oldest first, a page at a time, with the owner's total. Self-service keys see their own owner only. " +
          'With `all=true` (admin and read-only keys only): every owner\'s keys, newest first, filtered by `ownerId`, ' +
          '`environment` and `status`, without a total; 501 `list_all_unsupported` when the key store cannot list across owners.',
        parameters: [
          {
            name: 'all',
            in: 'query',
            required: false,
            schema: { type: 'boolean', default: false },
            description: "List every owner's keys, newest first (admin or read scope).",
          },
          {
            name: 'environment',
            in: 'query',
            required: false,
            schema: { type: 'string' },
            description: 'With `all=true`: only keys of this environment.',
          },
          {
            name: 'status',
            in: 'query',
            required: false,
            schema: { type: 'string', enum: ['active', 'expired', 'revoked', 'disabled'] },
            description: 'With `all=true`: only keys in this state now (revoked over disabled over expired).',
          },
          {
            name: 'ownerId',
            in: 'query',
            required: false,
            schema: { type: 'string' },
            description: "Default: the caller's owner; with `all=true`, a filter (default: every owner).",
          },
          { name: 'cursor', in: 'query', required: false, schema: { type: 'string' }, description: '`nextCursor` of the previous page.' },
          {
            name: 'limit',
            in: 'query',
            required: false,
            schema: { type: 'integer', minimum: 1, maximum: routes.maxPageSize, default: routes.defaultPageSize },
          },
        ],
        responses: {
          200: response('One page of keys.', { oneOf: [ref(MANAGEMENT_SCHEMAS.page), ref(MANAGEMENT_SCHEMAS.allPage)] }, noStore),
          400: badRequest,
          403: forbiddenOwner,
          501: response(
            'list_all_unsupported: `all=true`, and the key store does not implement `listAll`.',
            ref(MANAGEMENT_SCHEMAS.error),
          ),
        },
      };
    case 'get':
      return {
        summary: 'Get an API key',
        parameters: [idParameter],
        responses: { 200: response('The key record.', resource, withETag), 404: notFound },
      };
    case 'update':
      return {
        summary: 'Update an API key',
        description:
          'Changes only the fields sent (name, scopes, metadata, expiry or policy; `null` removes an expiry or a policy), ' +
          'in one atomic write: a concurrent change of other fields is kept.',
        parameters: [idParameter, ifMatchParameter],
        requestBody: body(MANAGEMENT_SCHEMAS.updateRequest, true),
        responses: {
          200: response('The updated record.', resource, withETag),
          400: badRequest,
          403: forbiddenOwner,
          404: notFound,
          412: versionConflict,
        },
      };
    case 'revoke':
      return {
        summary: 'Revoke an API key',
        description:
          'The key stops working at once, for good, and so (by default) does every key it issued, transitively. ' +
          'Revoking twice keeps the first `revokedAt`.',
        parameters: [
          idParameter,
          {
            name: 'cascade',
            in: 'query',
            required: false,
            schema: { type: 'boolean', default: true },
            description: 'Also revoke every key this one issued (`issuedById`), and theirs. `false` revokes this key only.',
          },
          ifMatchParameter,
        ],
        responses: { 200: response('The revoked record.', resource, withETag), 400: badRequest, 404: notFound, 412: versionConflict },
      };
    case 'disable':
    case 'enable':
      return statusOperation(route);
    case 'rotate':
      return {
        summary: 'Rotate an API key',
        description:
          'Issues a replacement with the same owner, scopes, metadata and expiry; the old key keeps working for ' +
          '`gracePeriodMs`. The new plaintext is in this response only. A key is rotated once: of concurrent ' +
          'rotations of one key exactly one succeeds, and any other, or later, one answers 409 `already_rotated`.',
        parameters: [idParameter],
        requestBody: body(MANAGEMENT_SCHEMAS.rotateRequest, false),
        responses: {
          201: response('The replacement, with its plaintext, and the old record.', ref(MANAGEMENT_SCHEMAS.rotated), withETag),
          400: badRequest,
          403: forbiddenOwner,
          404: notFound,
          409: alreadyRotated,
        },
      };
    case 'quota':
      return {
        summary: "Set or top up an API key's quota balance",
        description:
          'Admin only. `{ "set": n }` makes the balance n credits, `{ "add": n }` moves it by n, in one atomic step of ' +
          'the rate limiter. Holds until the next refill, which restores `limit`. Keys on the same counters (a rotated key ' +
          'and its replacement) share the balance. Emits `api-key.quota-changed`.',
        parameters: [idParameter],
        requestBody: body(MANAGEMENT_SCHEMAS.quotaChangeRequest, true),
        responses: {
          200: response('The record, with `quota` as it stands after the change.', resource, withETag),
          400: badRequest,
          403: response('insufficient_scope: only a key with the admin scope can change a balance.', ref(MANAGEMENT_SCHEMAS.error)),
          404: notFound,
          501: response('not_supported: the configured rate limiter cannot change balances.', ref(MANAGEMENT_SCHEMAS.error)),
        },
      };
    case 'remove':
      return {
        summary: 'Delete an API key',
        description: 'Removes the record. Prefer revoking: a revoked key stays listed for audit.',
        parameters: [idParameter],
        responses: { 204: response('Deleted.'), 404: notFound },
      };
    default:
      return undefined;
  }
}

const keyRevoked = response('key_revoked: the key is revoked; revocation is final, so it cannot be enabled or disabled.', ref(MANAGEMENT_SCHEMAS.error));

/** `POST /{id}/disable` and `POST /{id}/enable`. */
function statusOperation(route: 'disable' | 'enable'): Json {
  const disable = route === 'disable';
  return {
    summary: disable ? 'Disable an API key' : 'Enable an API key',
    description: disable
      ? 'Switches the key off without revoking it: from now on, on every instance, it is refused with 401 ' +
        '`disabled_api_key`. Enable it again with `POST /{id}/enable`. Disabling a disabled key changes nothing.'
      : 'Switches a disabled key back on. Enabling an enabled key changes nothing.',
    parameters: [idParameter, ifMatchParameter],
    responses: {
      200: response(disable ? 'The disabled record.' : 'The enabled record.', ref(MANAGEMENT_SCHEMAS.apiKey), withETag),
      400: badRequest,
      403: forbiddenOwner,
      404: notFound,
      409: keyRevoked,
      412: versionConflict,
    },
  };
}
