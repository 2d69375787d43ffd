import type { ApiKeyPolicy } from './policy/api-key-policy.js';

/** Free-form, JSON-serialisable data a team keeps on a key (plan, customer, notes). */
export type ApiKeyMetadata = Record<string, unknown>;

/**
 * The stored record of an API key. The plaintext key is never part of it: only its
 * hash, which backends index and the library never returns or logs.
 */
export interface ApiKey {
  /** UUID v4 assigned when the key is issued. */
  id: string;
  /** Human-readable label, e.g. "CI deploy key". */
  name: string;
  /** Who the key acts for: a user, customer, tenant or service id. */
  ownerId: string;
  /** Lowercase hex SHA-256 (or HMAC-SHA256 with a pepper) of the plaintext key. */
  keyHash: string;
  /** Non-secret display hint: the prefix and the last four characters, e.g. `prod_…a1B2`. */
  hint: string;
  /** Scopes granted to the key. */
  scopes: string[];
  /** Application data kept with the key. */
  metadata: ApiKeyMetadata;
  createdAt: Date;
  updatedAt: Date;
  /** After this instant the key no longer verifies; `null` means it never expires. */
  expiresAt: Date | null;
  /** When the key was revoked; a revoked key never verifies again. */
  revokedAt: Date | null;
  /** Last successful verification, recorded at most once per usage interval. */
  lastUsedAt: Date | null;
  /** The key this one replaced through `rotate`, if any. */
  rotatedFromId: string | null;
  /** The environment the key belongs to (part of its prefix), e.g. `"live"`; `null` without environments. */
  environment: string | null;
  /** Rate limits, quota and IP allowlist (one JSON value); `null` for none, the common case. */
  policy: ApiKeyPolicy | null;
  /** Incremented by every successful write (create stores 1); for optimistic concurrency. */
  version: number;
  /** The key that minted this one through the management routes, or `null`. */
  issuedById: string | null;
  /**
   * When the key was switched off by `disable`; `null` while it is enabled. Unlike
   * `revokedAt` it is not final: `enable` clears it. A disabled key is refused with
   * `disabled_api_key`.
   */
  disabledAt: Date | null;
}

/** An {@link ApiKey} as the library hands it out: everything except the hash. */
export type ApiKeyView = Omit<ApiKey, 'keyHash'>;

/** A copy of the record without its hash, safe to return to a caller or attach to a request. */
export function toApiKeyView(record: ApiKey): ApiKeyView {
  return viewOf(record, [...record.scopes], cloneJson(record.metadata), record.policy ? cloneJson(record.policy) : null);
}

/**
 * {@link toApiKeyView} for a record nobody else holds, such as a backend's answer (the
 * backend contract makes it a copy): its scopes, metadata and policy are taken as they
 * are, not copied again.
 */
export function ownedApiKeyView(record: ApiKey): ApiKeyView {
  return viewOf(record, record.scopes, record.metadata, record.policy ?? null);
}

/** The view's fields, always in this order so every view has one shape. */
function viewOf(record: ApiKey, scopes: string[], metadata: ApiKeyMetadata, policy: ApiKeyPolicy | null): ApiKeyView {
  return {
    id: record.id,
    name: record.name,
    ownerId: record.ownerId,
    hint: record.hint,
    scopes,
    metadata,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    expiresAt: record.expiresAt,
    revokedAt: record.revokedAt,
    lastUsedAt: record.lastUsedAt,
    rotatedFromId: record.rotatedFromId,
    // `?? null` / `?? 1`: records of custom backends written before these fields existed.
    environment: record.environment ?? null,
    policy,
    version: record.version ?? 1,
    issuedById: record.issuedById ?? null,
    disabledAt: record.disabledAt ?? null,
  };
}

/** A deep copy of a record, so callers and stores never share mutable state. */
export function cloneApiKey(record: ApiKey): ApiKey {
  return {
    ...record,
    scopes: [...record.scopes],
    metadata: cloneJson(record.metadata),
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
    expiresAt: record.expiresAt ? new Date(record.expiresAt) : null,
    revokedAt: record.revokedAt ? new Date(record.revokedAt) : null,
    lastUsedAt: record.lastUsedAt ? new Date(record.lastUsedAt) : null,
    environment: record.environment ?? null,
    policy: record.policy ? cloneJson(record.policy) : null,
    version: record.version ?? 1,
    issuedById: record.issuedById ?? null,
    disabledAt: record.disabledAt ? new Date(record.disabledAt) : null,
  };
}

/**
 * Deep copy of a JSON value. Metadata is validated as JSON on the way in, so this
 * covers it, and it is several times cheaper than `structuredClone` on the hot path
 * (an empty object, the common case, costs one allocation).
 */
export function cloneJson<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(cloneJson) as T;
  if (value instanceof Date) return new Date(value) as T;
  const out: Record<string, unknown> = {};
  for (const key in value) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    const copy = cloneJson((value as Record<string, unknown>)[key]);
    // JSON.parse makes "__proto__" an own key; plain assignment would set the prototype instead.
    if (key === '__proto__') Object.defineProperty(out, key, { value: copy, enumerable: true, writable: true, configurable: true });
    else out[key] = copy;
  }
  return out as T;
}
