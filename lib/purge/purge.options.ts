import { ApiKeyValidationError } from '../api-key.errors.js';
import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';

/** Options of {@link ApiKeyService.purge}. At least one of `expiredBefore` and `revokedBefore`. */
export interface PurgeKeysOptions {
  /** Delete keys whose `expiresAt` is before this instant (not in the future). */
  expiredBefore?: Date;
  /** Delete keys revoked before this instant (not in the future). */
  revokedBefore?: Date;
  /** Records deleted per backend call (one bounded statement or script). 1-10000, default `500`. */
  batchSize?: number;
  /**
   * Most batches this call runs before it returns with `done: false`, so one call is
   * bounded however much there is to delete; call again to continue. Default `20`.
   */
  maxBatches?: number;
}

/** What one {@link ApiKeyService.purge} call did. */
export interface PurgeResult {
  /** Records deleted. */
  deleted: number;
  /** Backend calls made. */
  batches: number;
  /** `false` when it stopped at `maxBatches` with a full last batch: more may be left. */
  done: boolean;
}

/**
 * Module option `purge`: delete expired and revoked keys periodically, on one instance
 * of a fleet per interval (see docs/operations.md, "Purging old keys").
 */
export interface ApiAuthPurgeOptions {
  /** Milliseconds between two purges. At least `1000`. */
  intervalMs: number;
  /**
   * Keep expired keys this many milliseconds after their `expiresAt` before deleting
   * them (so they show as expired for a while); `null` never purges expired keys.
   * Default `604800000` (7 days).
   */
  expiredFor?: number | null;
  /** The same for revoked keys, counted from `revokedAt`. Default `604800000` (7 days). */
  revokedFor?: number | null;
  /** Records per backend call. 1-10000, default `500`. */
  batchSize?: number;
}

/** `purge` after defaults and validation. */
export interface ResolvedPurgeOptions {
  intervalMs: number;
  expiredFor: number | null;
  revokedFor: number | null;
  batchSize: number;
}

const SEVEN_DAYS_MS = 7 * 24 * 60 * 60 * 1000;
export const DEFAULT_PURGE_BATCH_SIZE = 500;
const MAX_BATCH_SIZE = 10_000;
const OPTION_NAMES = optionNames<ApiAuthPurgeOptions>({ intervalMs: true, expiredFor: true, revokedFor: true, batchSize: true });

function fail(option: string, expectation: string, value: unknown): never {
  throw new Error(`nestjs-api-auth: option "purge.${option}" ${expectation} (got ${typeof value === 'number' ? value : typeof value}).`);
}

function integer(option: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(option, `must be an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** Validates the module's `purge` option at start-up; `null` when it is not set. */
export function resolvePurgeOptions(value: ApiAuthPurgeOptions | undefined): ResolvedPurgeOptions | null {
  if (value === undefined) return null;
  if (value === null || typeof value !== 'object') fail('', 'must be an object', value);
  assertKnownOptions(value, OPTION_NAMES, { of: 'ApiAuthModule', path: 'purge.' });
  const retention = (option: 'expiredFor' | 'revokedFor') => {
    const given = value[option];
    if (given === undefined) return SEVEN_DAYS_MS;
    return given === null ? null : integer(option, given, 0);
  };
  const resolved = {
    intervalMs: integer('intervalMs', value.intervalMs, 1000, 2_147_483_647),
    expiredFor: retention('expiredFor'),
    revokedFor: retention('revokedFor'),
    batchSize: value.batchSize === undefined ? DEFAULT_PURGE_BATCH_SIZE : integer('batchSize', value.batchSize, 1, MAX_BATCH_SIZE),
  };
  if (resolved.expiredFor === null && resolved.revokedFor === null) fail('expiredFor', 'or "purge.revokedFor" must be set', null);
  return resolved;
}

/** The validated arguments of one {@link ApiKeyService.purge} call. */
export function validatePurgeKeysOptions(options: PurgeKeysOptions, now: Date) {
  if (options == null || typeof options !== 'object') throw new ApiKeyValidationError('options', 'must be an object');
  for (const field of Object.keys(options)) {
    if (!['expiredBefore', 'revokedBefore', 'batchSize', 'maxBatches'].includes(field)) {
      throw new ApiKeyValidationError(field, 'is not a known field');
    }
  }
  const bound = (field: 'expiredBefore' | 'revokedBefore'): Date | undefined => {
    const date = options[field];
    if (date === undefined) return undefined;
    if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw new ApiKeyValidationError(field, 'must be a valid Date');
    // A bound in the future would delete keys that still work.
    if (date.getTime() > now.getTime()) throw new ApiKeyValidationError(field, 'must not be in the future');
    return new Date(date);
  };
  const expiredBefore = bound('expiredBefore');
  const revokedBefore = bound('revokedBefore');
  if (expiredBefore === undefined && revokedBefore === undefined) {
    throw new ApiKeyValidationError('expiredBefore', 'or "revokedBefore" must be given');
  }
  const count = (field: 'batchSize' | 'maxBatches', fallback: number, max: number): number => {
    const n = options[field] ?? fallback;
    if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new ApiKeyValidationError(field, `must be an integer from 1 to ${max}`);
    return n;
  };
  return {
    expiredBefore,
    revokedBefore,
    batchSize: count('batchSize', DEFAULT_PURGE_BATCH_SIZE, MAX_BATCH_SIZE),
    maxBatches: count('maxBatches', 20, 1_000_000),
  };
}
