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
  /** `update` with an `expectedVersion` that no longer matches the stored record. */
  VersionConflict: 'version_conflict',
} as const;

export type ApiKeyErrorCode = (typeof ApiKeyErrorCode)[keyof typeof ApiKeyErrorCode];

/** Codes for which the guard answers 401. */
export type AuthenticationFailureCode =
  | typeof ApiKeyErrorCode.MissingApiKey
  | typeof ApiKeyErrorCode.InvalidApiKey
  | typeof ApiKeyErrorCode.ExpiredApiKey
  | typeof ApiKeyErrorCode.RevokedApiKey;

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

/** An operation named a key id that is not stored. */
export class ApiKeyNotFoundError extends ApiKeyError {
  constructor(readonly id: string) {
    super(`API key ${JSON.stringify(id)} was not found.`);
  }
}

/** `update` with an `expectedVersion` that no longer matches the stored record. */
export class VersionConflictError extends ApiKeyError {
  constructor(
    readonly id: string,
    readonly expectedVersion: number,
    readonly actualVersion: number,
  ) {
    super(`API key ${JSON.stringify(id)} is at version ${actualVersion}, not the expected ${expectedVersion}.`);
  }
}

/**
 * `rotate` was asked to replace a key that already has a replacement: another
 * rotation of it won, at the same time or earlier. Nothing was minted and the old key
 * was left as the winning rotation set it. The management routes answer 409
 * `already_rotated`.
 */
export class ApiKeyAlreadyRotatedError extends ApiKeyError {
  constructor(
    /** The key that was to be rotated. */
    readonly id: string,
    /** Its replacement, minted by the rotation that won. */
    readonly replacementId: string,
  ) {
    super(`API key ${JSON.stringify(id)} was already rotated; its replacement is ${JSON.stringify(replacementId)}.`);
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
