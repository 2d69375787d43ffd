import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import type { ApiKeyMetadata } from '../api-key.interface.js';
import { ApiKeyNotFoundError, ApiKeyValidationError } from '../api-key.errors.js';
import { validatePolicy } from '../policy/policy.validation.js';
import { scopeGrammarError } from '../scopes/scope-patterns.js';
import type { IssueApiKeyInput, UpdateApiKeyOptions } from './key-inputs.js';
import { assertMetadataShape } from './metadata-shape.js';

const SCOPE_PATTERN = /^[\x21-\x7e]{1,128}$/;
export const HASH_PATTERN = /^[0-9a-f]{64}$/;
export const HINT_PATTERN = /^[^\x00-\x1f\x7f]{1,64}$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Fields each input accepts; anything else is refused, never silently dropped. */
export const ISSUE_FIELDS = ['ownerId', 'name', 'scopes', 'expiresAt', 'metadata', 'environment', 'policy', 'issuedById'];
export const IMPORT_FIELDS = [...ISSUE_FIELDS, 'createdAt'];
export const IMPORT_SOURCE_FIELDS = ['key', 'keyHash', 'hint'];
const UPDATE_OPTION_FIELDS = ['expectedVersion'];
export const REVOKE_OPTION_FIELDS = ['cascade', 'expectedVersion'];

/** The validated fields of a key about to be minted or imported. */
export function validateNewKey(input: IssueApiKeyInput, now: Date, options: ResolvedApiAuthOptions) {
  return {
    ownerId: validateOwnerId(input.ownerId),
    name: validateName(input.name),
    scopes: validateScopes(input.scopes ?? [], options.maxScopes),
    metadata: validateMetadata(input.metadata ?? {}, options.maxMetadataBytes),
    expiresAt: validateExpiry(input.expiresAt ?? null, now),
    environment: validateEnvironment(input.environment, options),
    policy: validatePolicy(input.policy),
    issuedById: validateIssuedById(input.issuedById ?? null),
  };
}

/** The environment a key is minted in: the deployment's by default, else one it accepts. */
export function validateEnvironment(environment: unknown, options: ResolvedApiAuthOptions): string | null {
  if (environment === undefined) return options.environment;
  if (typeof environment !== 'string' || !options.environments.includes(environment)) {
    throw new ApiKeyValidationError('environment', 'must be one of the environments this deployment accepts');
  }
  return environment;
}

export function validatePast(field: string, value: unknown, now: Date): Date {
  const date = value instanceof Date ? new Date(value) : typeof value === 'string' ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) throw new ApiKeyValidationError(field, 'must be a Date or an ISO 8601 string');
  if (date > now) throw new ApiKeyValidationError(field, 'must not be in the future');
  return date;
}

export function validateOwnerId(ownerId: unknown): string {
  if (typeof ownerId !== 'string' || ownerId.trim().length === 0) {
    throw new ApiKeyValidationError('ownerId', 'must be a non-empty string');
  }
  if (ownerId.length > 255) throw new ApiKeyValidationError('ownerId', 'must be at most 255 characters');
  return ownerId;
}

export function validateName(name: unknown): string {
  if (typeof name !== 'string' || name.trim().length === 0) {
    throw new ApiKeyValidationError('name', 'must be a non-empty string');
  }
  if (name.length > 200) throw new ApiKeyValidationError('name', 'must be at most 200 characters');
  return name;
}

export function validateScopes(scopes: unknown, maxScopes: number): string[] {
  if (!Array.isArray(scopes)) throw new ApiKeyValidationError('scopes', 'must be an array of strings');
  if (scopes.length > maxScopes) {
    throw new ApiKeyValidationError('scopes', `must hold at most ${maxScopes} scopes`);
  }
  for (const scope of scopes) {
    if (typeof scope !== 'string' || !SCOPE_PATTERN.test(scope)) {
      throw new ApiKeyValidationError('scopes', 'each scope must be 1-128 printable ASCII characters without spaces');
    }
    const wildcard = scopeGrammarError(scope);
    if (wildcard !== null) throw new ApiKeyValidationError('scopes', `${JSON.stringify(scope)} ${wildcard}`);
  }
  return [...new Set(scopes as string[])];
}

export function validateMetadata(metadata: unknown, maxBytes: number): ApiKeyMetadata {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new ApiKeyValidationError('metadata', 'must be a plain object');
  }
  assertMetadataShape(metadata, maxBytes);
  let json: string;
  try {
    json = JSON.stringify(metadata);
  } catch {
    throw new ApiKeyValidationError('metadata', 'must be JSON-serialisable');
  }
  // `toJSON` decides what is stored (a Date becomes a string, or nothing at all), so
  // the serialised form, not the input, must be a plain object.
  if (typeof json !== 'string' || !json.startsWith('{')) {
    throw new ApiKeyValidationError('metadata', 'must be a plain object');
  }
  if (Buffer.byteLength(json, 'utf8') > maxBytes) {
    throw new ApiKeyValidationError('metadata', `must be at most ${maxBytes} bytes as JSON`);
  }
  // The JSON round trip drops functions and undefined, exactly what a store would keep.
  return JSON.parse(json) as ApiKeyMetadata;
}

export function validateExpiry(value: unknown, now: Date): Date | null {
  if (value === null) return null;
  const date = value instanceof Date ? new Date(value) : typeof value === 'string' ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) {
    throw new ApiKeyValidationError('expiresAt', 'must be a Date or an ISO 8601 string');
  }
  if (date <= now) throw new ApiKeyValidationError('expiresAt', 'must be in the future');
  return date;
}

/** `issuedById` as given: `null`, or a key id (1-64 characters). */
export function validateIssuedById(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) {
    throw new ApiKeyValidationError('issuedById', 'must be a key id (1-64 characters) or null');
  }
  return value;
}

/** `expectedVersion` of an update or revoke: absent, or a positive integer. */
export function validateUpdateOptions(options: UpdateApiKeyOptions): number | undefined {
  if (options == null || typeof options !== 'object') throw new ApiKeyValidationError('options', 'must be an object');
  assertKnownFields(options, UPDATE_OPTION_FIELDS);
  const expected = options.expectedVersion;
  if (expected !== undefined && (!Number.isSafeInteger(expected) || expected < 1)) {
    throw new ApiKeyValidationError('expectedVersion', 'must be a positive integer');
  }
  return expected;
}

/**
 * Refuses any own field of `input` not in `allowed`, naming it: a misspelt or foreign
 * field (`expiresIn`, `scope`) silently dropped would mint a key unlike the one asked for.
 */
export function assertKnownFields(input: object, allowed: readonly string[]): void {
  for (const field of Object.keys(input)) {
    if (!allowed.includes(field)) throw new ApiKeyValidationError(field, 'is not a known field');
  }
}

/** Refuses an id no store could hold, before any store call; the error shows only a minted-shaped id. */
export function requireIdShape(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 64) throw new ApiKeyNotFoundError(shownId(id));
}

/** `id` as errors may show it: only ids shaped like the ones this service mints. */
export function shownId(id: unknown): string {
  return typeof id === 'string' && UUID_PATTERN.test(id) ? id : '(redacted)';
}
