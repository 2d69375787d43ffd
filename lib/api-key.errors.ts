/**
 * Stable, machine-readable codes the guard puts in its error responses. Clients may
 * branch on them; they never change meaning.
 */
export const ApiKeyErrorCode = {
  /** No key was sent. */
  MissingApiKey: 'missing_api_key',
  /** The value sent is not a key of this deployment, or no such key exists. */
  InvalidApiKey: 'invalid_api_key',
  /** The key exists but its `expiresAt` has passed. */
  ExpiredApiKey: 'expired_api_key',
  /** The key exists but was revoked. */
  RevokedApiKey: 'revoked_api_key',
  /** The key exists but is disabled (`disable`); `enable` makes it work again. */
  DisabledApiKey: 'disabled_api_key',
  /** The key is valid but lacks a scope the route requires. */
  InsufficientScope: 'insufficient_scope',
  /** The key store could not answer; retry later. Never means the key is bad. */
  BackendUnavailable: 'backend_unavailable',
  /** The key's `policy.allowedIps` does not include the caller's address. */
  IpNotAllowed: 'ip_not_allowed',
  /** The route is restricted to other environments (`@RequireEnvironment()`). */
  EnvironmentNotAllowed: 'environment_not_allowed',
  /** A rate limit of the key is used up; retry after `Retry-After` seconds. */
  RateLimited: 'rate_limited',
  /** The key's quota has no credits left for this call. */
  QuotaExhausted: 'quota_exhausted',
  /** A write named an `expectedVersion` (HTTP `If-Match`) the stored key no longer has. */
  VersionConflict: 'version_conflict',
} as const;

export type ApiKeyErrorCode = (typeof ApiKeyErrorCode)[keyof typeof ApiKeyErrorCode];

/** Codes for which the guard answers 401. */
export type AuthenticationFailureCode =
  | typeof ApiKeyErrorCode.MissingApiKey
  | typeof ApiKeyErrorCode.InvalidApiKey
  | typeof ApiKeyErrorCode.ExpiredApiKey
  | typeof ApiKeyErrorCode.RevokedApiKey
  | typeof ApiKeyErrorCode.DisabledApiKey;

/** Base class of the plain errors that backends and the service throw. None is an HttpException. */
export class ApiKeyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** `create` was given an id or key hash that is already stored. */
export class DuplicateApiKeyError extends ApiKeyError {
  constructor(readonly field: 'id' | 'keyHash', options?: { cause?: unknown }) {
    // The value is deliberately left out: for keyHash it is a secret-derived value.
    super(`An API key with the same ${field} already exists.`, options);
  }
}

/** Ids this library mints (`randomUUID`, `replacementIdFor`): the only ones an error may show. */
const KEY_ID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `id` as an error may show it: the id itself when it is shaped like the ids this
 * library mints, otherwise `"(redacted)"`. What a caller passes where an id belongs
 * may be a plaintext key (`GET /api-keys/<key>`), and errors reach app filters,
 * interceptors and logs.
 */
export function shownKeyId(id: unknown): string {
  return typeof id === 'string' && KEY_ID_SHAPE.test(id) ? id : '(redacted)';
}

/** An operation named a key id that is not stored. */
export class ApiKeyNotFoundError extends ApiKeyError {
  /** The id asked for, or `"(redacted)"` when it was not shaped like a key id (see {@link shownKeyId}). */
  readonly id: string;

  constructor(id: string) {
    // Redacted here, not by each caller: every backend and route builds this error.
    const shown = shownKeyId(id);
    super(`API key ${JSON.stringify(shown)} was not found.`);
    this.id = shown;
  }
}

/**
 * `rotate` was asked to replace a key that already has a replacement: another
 * rotation of it won, at the same time or earlier. Nothing was minted and the old key
 * was left as the winning rotation set it. The management routes answer 409
 * `already_rotated`.
 */
export class ApiKeyAlreadyRotatedError extends ApiKeyError {
  /** The key that was to be rotated (shown as {@link shownKeyId} shows it). */
  readonly id: string;
  /** Its replacement, minted by the rotation that won. */
  readonly replacementId: string;

  constructor(id: string, replacementId: string) {
    const shown = shownKeyId(id);
    const shownReplacement = shownKeyId(replacementId);
    super(`API key ${JSON.stringify(shown)} was already rotated; its replacement is ${JSON.stringify(shownReplacement)}.`);
    this.id = shown;
    this.replacementId = shownReplacement;
  }
}

/** `update` with an `expectedVersion` that no longer matches the stored record. */
export class VersionConflictError extends ApiKeyError {
  /** Always `version_conflict`. */
  readonly code = ApiKeyErrorCode.VersionConflict;

  constructor(
    /** The key that was to be written. */
    readonly id: string,
    /** The version the caller expected. */
    readonly expectedVersion: number,
    /** The version stored when the write was refused. */
    readonly actualVersion: number,
  ) {
    super(`API key ${JSON.stringify(id)} is at version ${actualVersion}, not the expected ${expectedVersion}.`);
  }
}

/**
 * The backend could not be reached or did not answer in time. The guard answers 503
 * and never treats this as "key not found".
 */
export class BackendUnavailableError extends ApiKeyError {
  constructor(message = 'The API key backend is unavailable.', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Input to `ApiKeyService` was rejected; `field` names the offending property. */
export class ApiKeyValidationError extends ApiKeyError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`Invalid "${field}": ${message}`);
  }
}

/**
 * One more key would give its owner more than `maxKeysPerOwner`. Nothing was stored.
 * The management routes answer 409 `key_limit_reached`: the request is fine, the
 * owner's state is not, and deleting a key (revoked and expired ones count until then)
 * makes the same request succeed.
 */
export class ApiKeyLimitReachedError extends ApiKeyError {
  /** Stable machine-readable code, as in the HTTP answer. */
  readonly code = 'key_limit_reached';

  constructor(
    /** The `maxKeysPerOwner` in force. */
    readonly limit: number,
  ) {
    // No owner id: it is the caller's own business, and may be an e-mail address.
    super(`The owner already has ${limit} API keys, the most maxKeysPerOwner allows; delete unused keys first.`);
  }
}

/**
 * The configured backend lacks an optional capability the call needs (a custom backend
 * written before it existed). Names the method to implement; nothing was changed.
 */
export class UnsupportedBackendOperationError extends ApiKeyError {
  constructor(
    /** The optional `ApiKeyBackend` method that is missing, e.g. `"purge"`. */
    readonly operation: string,
  ) {
    super(`The API key backend does not implement the optional method "${operation}", which this call needs.`);
  }
}

/**
 * `enable` or `disable` named a revoked key: revocation is final, so there is nothing
 * to switch. Nothing was written. The management routes answer 409 `key_revoked`: the
 * request is well formed, the key's state is what refuses it.
 */
export class ApiKeyRevokedError extends ApiKeyError {
  /** Stable machine-readable code, as in the HTTP answer. */
  readonly code = 'key_revoked';

  constructor(
    /** The key (shown as {@link shownKeyId} shows it). */
    readonly id: string,
  ) {
    const shown = shownKeyId(id);
    super(`API key ${JSON.stringify(shown)} is revoked; a revoked key cannot be enabled or disabled.`);
    this.id = shown;
  }
}

/**
 * `listAll` (the admin listing across owners, `GET /api-keys?all=true`) was asked of a
 * backend that does not implement the optional `listAll` capability. The management
 * routes answer 501 `list_all_unsupported`.
 */
export class ListAllUnsupportedError extends ApiKeyError {
  /** Stable machine-readable code, as in the HTTP answer. */
  readonly code = 'list_all_unsupported';

  constructor() {
    super('The API key backend does not implement listAll, so keys cannot be listed across owners; list one owner at a time.');
  }
}
