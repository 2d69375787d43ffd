import type { ApiKeyMetadata, ApiKeyView } from '../api-key.interface.js';
import type { ApiKeyPolicy } from '../policy/api-key-policy.js';

// The inputs and results of ApiKeyService's management verbs.

/** Input of {@link ApiKeyService.issue}. */
export interface IssueApiKeyInput {
  /** Who the key acts for. 1-255 characters. */
  ownerId: string;
  /** A label for humans. 1-200 characters. */
  name: string;
  /** Scopes granted; duplicates are dropped. Default none. */
  scopes?: string[];
  /** When the key stops working; must be in the future. Default never. */
  expiresAt?: Date | string | null;
  /** JSON-serialisable application data, bounded by `maxMetadataBytes`. */
  metadata?: ApiKeyMetadata;
  /**
   * The environment to mint the key in; one of `acceptEnvironments`. Default: the
   * module's `environment`.
   */
  environment?: string;
  /** Rate limits, quota and allowed addresses. Default none. */
  policy?: ApiKeyPolicy | null;
  /**
   * The key that mints this one (the management routes pass the caller's), so that
   * revoking it with `cascade` revokes this one too. Default `null`.
   */
  issuedById?: string | null;
}

/**
 * The key being imported by {@link ApiKeyService.import}: its plaintext (hashed here,
 * never stored), or the lowercase hex SHA-256 the other system stored, with an
 * optional display hint.
 */
export type ImportApiKeySource = { key: string } | { keyHash: string; hint?: string };

/** Input of {@link ApiKeyService.import}: what `issue` takes, plus the original creation time. */
export interface ImportApiKeyInput extends IssueApiKeyInput {
  /** When the other system created the key; must not be in the future. Default now. */
  createdAt?: Date | string;
}

/** Options of {@link ApiKeyService.update}. */
export interface UpdateApiKeyOptions {
  /**
   * Write only if the key is still at this `version` (what an earlier read returned);
   * otherwise reject with `VersionConflictError` and write nothing.
   */
  expectedVersion?: number;
}

/** Options of {@link ApiKeyService.revoke}. */
export interface RevokeApiKeyOptions {
  /**
   * Also revoke every key this one issued (`issuedById`), transitively. Default
   * `false` here; the management routes default to `true`.
   */
  cascade?: boolean;
  /**
   * Revoke only if the key is still at this `version`; otherwise reject with
   * `VersionConflictError`. The cascade is not pinned: issued keys are revoked as they are.
   */
  expectedVersion?: number;
}

/** Fields {@link ApiKeyService.update} may change. */
export interface UpdateApiKeyInput {
  name?: string;
  scopes?: string[];
  metadata?: ApiKeyMetadata;
  /** A future instant, or `null` to remove the expiry. */
  expiresAt?: Date | string | null;
  /** A new policy, or `null` to remove it. Replaces the whole policy. */
  policy?: ApiKeyPolicy | null;
}

/** Options of {@link ApiKeyService.rotate}. */
export interface RotateApiKeyOptions {
  /**
   * How long the old key keeps working, in milliseconds, so clients can switch over
   * without downtime. `0` ends it at once. It never extends the old key's own expiry.
   */
  gracePeriodMs?: number;
  /** Name of the new key. Default: the old key's name. */
  name?: string;
  /**
   * The key doing the rotation, recorded as the replacement's `issuedById` (the
   * management routes pass the caller's). Default: the old key's `issuedById`, so a
   * cascade from its issuer still reaches the replacement.
   */
  issuedById?: string | null;
}

/** A newly minted key: `key` is the plaintext, shown once and stored nowhere. */
export interface IssuedApiKey {
  key: string;
  apiKey: ApiKeyView;
}

/** Result of {@link ApiKeyService.rotate}. */
export interface RotatedApiKey extends IssuedApiKey {
  /** The old key's record, with its new `expiresAt`. */
  previous: ApiKeyView;
}

/** One page of an owner's keys. */
export interface ApiKeyPage {
  items: ApiKeyView[];
  /** Pass back as `cursor` for the next page; `null` on the last page. */
  nextCursor: string | null;
  /** Total number of the owner's keys. */
  total: number;
}
