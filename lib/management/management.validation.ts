import type { ApiKeyMetadata } from '../api-key.interface.js';
import { ApiKeyValidationError } from '../api-key.errors.js';
import type { ApiKeyPolicy } from '../policy/api-key-policy.js';
import { validatePolicy } from '../policy/policy.validation.js';
import { isEnvironmentName } from '../policy/environment.js';
import { assertMetadataShape } from './metadata-shape.js';

/** Limits the management validators enforce, from the module and routes options. */
export interface ManagementLimits {
  maxScopes: number;
  maxMetadataBytes: number;
  allowedScopes: ReadonlySet<string> | null;
  maxGracePeriodMs: number;
  defaultPageSize: number;
  maxPageSize: number;
  /** `POST /` may leave `scopes` out: the module has `defaultScopes`. */
  scopesOptional?: boolean;
}

/** A validated `POST /` body. `ownerId` is absent when the caller issues for its own owner. */
export interface IssueRequest {
  ownerId?: string;
  name: string;
  /** Absent only when the module has `defaultScopes` and the body names none. */
  scopes?: string[];
  /** Absent when the body names none (never expires, or for a self-service caller its own expiry); `null` when it asks for none. */
  expiresAt?: Date | null;
  metadata: ApiKeyMetadata;
  /** Absent when the body names none: the service mints in the default environment. */
  environment?: string;
  /** Absent when the body names none; `null` when it asks for no limits. */
  policy?: ApiKeyPolicy | null;
}

/** A validated `PATCH /:id` body: at least one field. */
export interface UpdateRequest {
  name?: string;
  scopes?: string[];
  metadata?: ApiKeyMetadata;
  expiresAt?: Date | null;
  /** A whole new policy, or `null` to remove it. */
  policy?: ApiKeyPolicy | null;
}

/** A validated `POST /:id/rotate` body. */
export interface RotateRequest {
  gracePeriodMs: number;
  name?: string;
}

/** A validated `GET /` query. */
export interface ListQuery {
  ownerId?: string;
  cursor?: string;
  limit: number;
}

export const NAME_MAX_LENGTH = 200;
export const OWNER_ID_MAX_LENGTH = 255;
const SCOPE_PATTERN = /^[\x21-\x7e]{1,128}$/;
// Date.parse accepts far more than ISO 8601 ("March 7", "2030"); an API contract should not.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

const invalid = (field: string, message: string) => new ApiKeyValidationError(field, message);

/**
 * The body as a plain object whose every key is in `allowed`. `undefined` (no body)
 * counts as `{}` when `optional`; arrays, strings and `null` are never a body.
 */
function objectBody(body: unknown, allowed: readonly string[], optional: boolean): Record<string, unknown> {
  if (body === undefined && optional) return {};
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid('body', 'must be a JSON object');
  }
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw invalid(key.slice(0, 64), `is not a known field; expected ${allowed.join(', ') || 'none'}`);
  }
  return body as Record<string, unknown>;
}

function text(field: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value.trim().length === 0) throw invalid(field, 'must be a non-empty string');
  if (value.length > max) throw invalid(field, `must be at most ${max} characters`);
  return value;
}

function scopes(value: unknown, limits: ManagementLimits): string[] {
  if (!Array.isArray(value) || value.length === 0) throw invalid('scopes', 'must be a non-empty array of strings');
  if (value.length > limits.maxScopes) throw invalid('scopes', `must hold at most ${limits.maxScopes} scopes`);
  for (const scope of value) {
    if (typeof scope !== 'string' || !SCOPE_PATTERN.test(scope)) {
      throw invalid('scopes', 'each scope must be a string of 1-128 printable ASCII characters without spaces');
    }
    if (limits.allowedScopes && !limits.allowedScopes.has(scope)) {
      throw invalid('scopes', `${JSON.stringify(scope)} is not a scope this API grants`);
    }
  }
  return [...new Set(value as string[])];
}

function expiry(value: unknown, now: number): Date | null {
  if (value === null) return null;
  if (typeof value !== 'string' || !ISO_8601.test(value)) {
    throw invalid('expiresAt', 'must be null or an ISO 8601 date-time with a time zone, e.g. "2030-01-01T00:00:00Z"');
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw invalid('expiresAt', 'is not a valid date-time');
  if (date.getTime() <= now) throw invalid('expiresAt', 'must be in the future');
  return date;
}

function metadata(value: unknown, limits: ManagementLimits): ApiKeyMetadata {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid('metadata', 'must be a JSON object');
  }
  // Before stringifying: a body nested thousands deep overflows JSON.stringify's stack.
  assertMetadataShape(value, limits.maxMetadataBytes);
  const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
  if (bytes > limits.maxMetadataBytes) {
    throw invalid('metadata', `must be at most ${limits.maxMetadataBytes} bytes as JSON (got ${bytes})`);
  }
  return value as ApiKeyMetadata;
}

/** Environment names as the module accepts them; membership is the service's check. */
function environment(value: unknown): string {
  if (!isEnvironmentName(value)) {
    throw invalid('environment', 'must be one of the environments this deployment accepts');
  }
  return value;
}

/**
 * The core's policy rules (one place, `validatePolicy`), minus `counterKey`: it ties a
 * key's counters to another key's, which `rotate` manages. Over HTTP it would let a
 * caller reset its budget by naming a fresh counter, or spend someone else's.
 */
function policy(value: unknown): ApiKeyPolicy | null {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.hasOwn(value, 'counterKey')) {
    throw invalid('policy.counterKey', 'is managed by the server and cannot be set over HTTP');
  }
  // Throws ApiKeyValidationError with a precise `policy.…` field, e.g. `policy.rateLimits[0].limit`.
  return validatePolicy(value);
}

/** Validates `POST /`. */
export function parseIssueRequest(body: unknown, limits: ManagementLimits, now = Date.now()): IssueRequest {
  const input = objectBody(body, ['ownerId', 'name', 'scopes', 'expiresAt', 'metadata', 'environment', 'policy'], false);
  if (input.name === undefined) throw invalid('name', 'is required');
  if (input.scopes === undefined && limits.scopesOptional !== true) throw invalid('scopes', 'is required');
  return {
    ...(input.ownerId === undefined ? {} : { ownerId: text('ownerId', input.ownerId, OWNER_ID_MAX_LENGTH) }),
    name: text('name', input.name, NAME_MAX_LENGTH),
    ...(input.scopes === undefined ? {} : { scopes: scopes(input.scopes, limits) }),
    ...(input.expiresAt === undefined ? {} : { expiresAt: expiry(input.expiresAt, now) }),
    metadata: input.metadata === undefined ? {} : metadata(input.metadata, limits),
    ...(input.environment === undefined ? {} : { environment: environment(input.environment) }),
    ...(input.policy === undefined ? {} : { policy: policy(input.policy) }),
  };
}

/** Validates `PATCH /:id`. */
export function parseUpdateRequest(body: unknown, limits: ManagementLimits, now = Date.now()): UpdateRequest {
  const input = objectBody(body, ['name', 'scopes', 'expiresAt', 'metadata', 'policy'], false);
  const changes: UpdateRequest = {};
  if (input.name !== undefined) changes.name = text('name', input.name, NAME_MAX_LENGTH);
  if (input.scopes !== undefined) changes.scopes = scopes(input.scopes, limits);
  if (input.expiresAt !== undefined) changes.expiresAt = expiry(input.expiresAt, now);
  if (input.metadata !== undefined) changes.metadata = metadata(input.metadata, limits);
  if (input.policy !== undefined) changes.policy = policy(input.policy);
  if (Object.keys(changes).length === 0) {
    throw invalid('body', 'must change at least one of name, scopes, expiresAt, metadata, policy');
  }
  return changes;
}

/** Validates `POST /:id/rotate`; the body is optional. */
export function parseRotateRequest(body: unknown, limits: ManagementLimits): RotateRequest {
  const input = objectBody(body, ['gracePeriodMs', 'name'], true);
  const grace = input.gracePeriodMs ?? 0;
  if (typeof grace !== 'number' || !Number.isSafeInteger(grace) || grace < 0 || grace > limits.maxGracePeriodMs) {
    throw invalid('gracePeriodMs', `must be an integer of milliseconds from 0 to ${limits.maxGracePeriodMs}`);
  }
  return {
    gracePeriodMs: grace,
    ...(input.name === undefined ? {} : { name: text('name', input.name, NAME_MAX_LENGTH) }),
  };
}

/** Validates a body that must carry nothing (`POST /:id/revoke`): absent or `{}`. */
export function parseEmptyRequest(body: unknown): void {
  objectBody(body, [], true);
}

/** A validated `POST /:id/revoke` query. */
export interface RevokeQuery {
  /** Also revoke every key the target issued, transitively. */
  cascade: boolean;
}

/** Validates the query of `POST /:id/revoke`: `cascade=true|false`, default `true`. */
export function parseRevokeQuery(query: unknown): RevokeQuery {
  const input = objectBody(query ?? {}, ['cascade'], true);
  if (input.cascade === undefined) return { cascade: true };
  if (input.cascade !== 'true' && input.cascade !== 'false') throw invalid('cascade', 'must be true or false, given once');
  return { cascade: input.cascade === 'true' };
}

/** Validates the query of `GET /`. */
export function parseListQuery(query: unknown, limits: ManagementLimits): ListQuery {
  const input = objectBody(query ?? {}, ['ownerId', 'cursor', 'limit'], true);
  for (const [key, value] of Object.entries(input)) {
    if (typeof value !== 'string') throw invalid(key, 'must be given once, as a single value');
  }
  const result: ListQuery = { limit: limits.defaultPageSize };
  if (input.ownerId !== undefined) result.ownerId = text('ownerId', input.ownerId, OWNER_ID_MAX_LENGTH);
  if (input.cursor !== undefined && input.cursor !== '') {
    result.cursor = text('cursor', input.cursor, 200);
  }
  if (input.limit !== undefined) {
    const limit = /^\d{1,6}$/.test(input.limit as string) ? Number(input.limit) : NaN;
    if (!(limit >= 1 && limit <= limits.maxPageSize)) {
      throw invalid('limit', `must be an integer from 1 to ${limits.maxPageSize}`);
    }
    result.limit = limit;
  }
  return result;
}
