import type { ApiKeyMetadata, ApiKeyView } from '../api-key.interface.js';

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

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

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
  };
}
