import type { ApiKeyView } from '../api-key.interface.js';

/**
 * Names of the events the library emits. Dotted, so an `EventEmitter2` created with
 * `wildcard: true` can subscribe to all of them with `@OnEvent('api-key.*')`.
 */
export const ApiKeyEventName = {
  Issued: 'api-key.issued',
  Imported: 'api-key.imported',
  Updated: 'api-key.updated',
  Rotated: 'api-key.rotated',
  Revoked: 'api-key.revoked',
  Deleted: 'api-key.deleted',
  Disabled: 'api-key.disabled',
  Enabled: 'api-key.enabled',
  AuthenticationDenied: 'api-key.authentication-denied',
  Purged: 'api-key.purged',
  Rehashed: 'api-key.rehashed',
  QuotaChanged: 'api-key.quota-changed',
} as const;

export type ApiKeyEventName = (typeof ApiKeyEventName)[keyof typeof ApiKeyEventName];

// Payloads carry records without their hash (ApiKeyView) and never a plaintext key:
// listeners forward events to logs, queues and audit stores.

/** A key was minted by `issue`. */
export interface ApiKeyIssuedEvent {
  type: typeof ApiKeyEventName.Issued;
  apiKey: ApiKeyView;
  at: Date;
}

/** A key from another system was stored by `import`. */
export interface ApiKeyImportedEvent {
  type: typeof ApiKeyEventName.Imported;
  apiKey: ApiKeyView;
  at: Date;
}

/** `update` changed a key. */
export interface ApiKeyUpdatedEvent {
  type: typeof ApiKeyEventName.Updated;
  apiKey: ApiKeyView;
  /** Names of the fields the caller set, e.g. `["scopes", "policy"]`. */
  changed: string[];
  at: Date;
}

/** `rotate` issued `apiKey` to replace `previous`, which now expires at the end of the grace period. */
export interface ApiKeyRotatedEvent {
  type: typeof ApiKeyEventName.Rotated;
  apiKey: ApiKeyView;
  previous: ApiKeyView;
  at: Date;
}

/** A key was revoked. Emitted once: revoking a revoked key again emits nothing. */
export interface ApiKeyRevokedEvent {
  type: typeof ApiKeyEventName.Revoked;
  apiKey: ApiKeyView;
  at: Date;
  /**
   * Set when this key was revoked by a cascade: the id of the key whose
   * `revoke(id, { cascade: true })` started it. Absent for the key revoked directly.
   */
  cascadeOf?: string;
}

/** A key was deleted. Emitted only when a record existed. */
export interface ApiKeyDeletedEvent {
  type: typeof ApiKeyEventName.Deleted;
  id: string;
  ownerId: string;
  at: Date;
}

/** `disable` switched a key off. Emitted once: disabling a disabled key again emits nothing. */
export interface ApiKeyDisabledEvent {
  type: typeof ApiKeyEventName.Disabled;
  apiKey: ApiKeyView;
  at: Date;
}

/** `enable` switched a disabled key back on. Emitted once: enabling an enabled key emits nothing. */
export interface ApiKeyEnabledEvent {
  type: typeof ApiKeyEventName.Enabled;
  apiKey: ApiKeyView;
  at: Date;
}

/** The guard refused a call, or `ApiKeyService.consume` refused one outside HTTP. */
export interface ApiKeyAuthenticationDeniedEvent {
  type: typeof ApiKeyEventName.AuthenticationDenied;
  /** The stable error code of the response, e.g. `invalid_api_key` or `rate_limited`. */
  code: string;
  /** The HTTP status the guard answered, or would answer for `consume` (401, 403, 429 or 503). */
  status: number;
  /** The key's id when it was verified and then refused (scope, address, environment, limits); otherwise `null`. */
  apiKeyId: string | null;
  /** Its owner, under the same condition. */
  ownerId: string | null;
  at: Date;
}

/** `purge` (called, or run by the module's `purge` option) deleted keys. Counts only. */
export interface ApiKeyPurgedEvent {
  type: typeof ApiKeyEventName.Purged;
  /** Records deleted by this purge. */
  deleted: number;
  /** Backend calls it made. */
  batches: number;
  /** `false` when it stopped at its batch bound with more possibly left. */
  done: boolean;
  at: Date;
}

/** A key hashed under a previous pepper was used and its stored hash upgraded to the current pepper. */
export interface ApiKeyRehashedEvent {
  type: typeof ApiKeyEventName.Rehashed;
  /** The key's id; nothing else (the event fires on the verification path). */
  id: string;
  at: Date;
}

/** `adjustQuota` set or topped up a key's quota balance (shared by every key on the same counters). */
export interface ApiKeyQuotaChangedEvent {
  type: typeof ApiKeyEventName.QuotaChanged;
  apiKeyId: string;
  ownerId: string;
  /** What was asked: `{ set: n }` or `{ add: n }`. */
  change: { set: number } | { add: number };
  /** The balance after the change. */
  remaining: number;
  at: Date;
}

/** Every event, discriminated by `type`. */
export type ApiKeyEvent =
  | ApiKeyIssuedEvent
  | ApiKeyImportedEvent
  | ApiKeyUpdatedEvent
  | ApiKeyRotatedEvent
  | ApiKeyRevokedEvent
  | ApiKeyDeletedEvent
  | ApiKeyDisabledEvent
  | ApiKeyEnabledEvent
  | ApiKeyAuthenticationDeniedEvent
  | ApiKeyPurgedEvent
  | ApiKeyRehashedEvent
  | ApiKeyQuotaChangedEvent;

/** Event name to payload, for typed listeners. */
export type ApiKeyEventMap = { [E in ApiKeyEvent as E['type']]: E };
