import type { ApiKeyMetadata, ApiKeyView } from '../api-key.interface.js';
import type { ApiKeyPolicy } from '../policy/api-key-policy.js';
import type { QuotaBalanceResource } from './quota-balance.resource.js';

/** A policy as clients see and send it: `counterKey` is server-side bookkeeping. */
export type ApiKeyPolicyResource = Omit<ApiKeyPolicy, 'counterKey'>;

/** An API key as the management routes return it: every field but the hash, dates as ISO 8601. */
export interface ApiKeyResource {
  id: string;
  name: string;
  ownerId: string;
  /** Non-secret display hint, e.g. `prod_…a1B2`. */
  hint: string;
  scopes: string[];
  metadata: ApiKeyMetadata;
  createdAt: string;
  updatedAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
  rotatedFromId: string | null;
  /** The environment in the key's prefix, e.g. `"live"`; `null` without environments. */
  environment: string | null;
  /** Rate limits, quota and IP allowlist; `null` for none. */
  policy: ApiKeyPolicyResource | null;
  /** Goes up by one with every change; single-key answers send it as `ETag: "<version>"`, for `If-Match`. */
  version: number;
  /** The key that issued this one through these routes, or `null`. Revoking that key revokes this one too. */
  issuedById: string | null;
  /** When the key was disabled (`POST /:id/disable`); `null` while it is enabled. */
  disabledAt: string | null;
  /**
   * The quota's balance now, read from the rate limiter: only in answers about one key
   * read by id (`GET /:id`, `POST /:id/quota`); `null` when the key has no quota; left
   * out when the limiter cannot say.
   */
  quota?: QuotaBalanceResource | null;
}

/** Body of `POST /` (201): the plaintext `key` appears here and in no other response. */
export interface IssuedApiKeyResource {
  key: string;
  apiKey: ApiKeyResource;
}

/** Body of `POST /:id/rotate` (201): the replacement's plaintext, its record and the old record. */
export interface RotatedApiKeyResource extends IssuedApiKeyResource {
  previous: ApiKeyResource;
}

/** Body of `GET /`. */
export interface ApiKeyPageResource {
  items: ApiKeyResource[];
  nextCursor: string | null;
  total: number;
}

/** Body of `GET /?all=true`: every owner's keys, newest first; no total. */
export interface ApiKeyListAllPageResource {
  items: ApiKeyResource[];
  nextCursor: string | null;
}

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

/** The client-visible parts, copied by name like the record itself. */
function toPolicyResource(policy: ApiKeyPolicy | null): ApiKeyPolicyResource | null {
  if (!policy) return null;
  const out: ApiKeyPolicyResource = {};
  if (policy.rateLimits) out.rateLimits = policy.rateLimits.map(({ name, limit, windowMs }) => ({ name, limit, windowMs }));
  if (policy.quota) {
    out.quota = { limit: policy.quota.limit };
    if (policy.quota.refillIntervalMs !== undefined) out.quota.refillIntervalMs = policy.quota.refillIntervalMs;
  }
  if (policy.allowedIps) out.allowedIps = [...policy.allowedIps];
  // A policy holding nothing but its counter key limits nothing.
  return Object.keys(out).length === 0 ? null : out;
}

/**
 * Copies the fields a client may see, by name: a backend that returns extra
 * properties (a hash among them) cannot leak them through the routes.
 */
export function toApiKeyResource(view: ApiKeyView): ApiKeyResource {
  return {
    id: view.id,
    name: view.name,
    ownerId: view.ownerId,
    hint: view.hint,
    scopes: [...view.scopes],
    metadata: view.metadata,
    createdAt: view.createdAt.toISOString(),
    updatedAt: view.updatedAt.toISOString(),
    expiresAt: iso(view.expiresAt),
    revokedAt: iso(view.revokedAt),
    lastUsedAt: iso(view.lastUsedAt),
    rotatedFromId: view.rotatedFromId,
    environment: view.environment ?? null,
    policy: toPolicyResource(view.policy ?? null),
    version: view.version ?? 1,
    issuedById: view.issuedById ?? null,
    disabledAt: iso(view.disabledAt ?? null),
  };
}
