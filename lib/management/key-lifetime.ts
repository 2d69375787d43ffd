import { ApiKeyValidationError } from '../api-key.errors.js';
import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';

/** Module option `keyLifetime`: how long keys live when nobody says, and at most. */
export interface KeyLifetimeOptions {
  /**
   * Milliseconds a key lives when it is issued or imported without an `expiresAt`
   * (`undefined`; an explicit `null` asks for no expiry and is refused under `maxMs`).
   * Default: none (such keys never expire).
   */
  defaultMs?: number;
  /**
   * Longest life a key may be given, counted from the write: an `expiresAt` later than
   * now + `maxMs`, or none at all, is refused with `ApiKeyValidationError` (400
   * `validation_error` over HTTP) on issue, import, update and self-service issue. A
   * rotation's replacement keeps the old key's expiry capped at now + `maxMs`. Default:
   * no maximum.
   */
  maxMs?: number;
}

/** `keyLifetime` after validation; `null` fields are unset. */
export interface ResolvedKeyLifetime {
  defaultMs: number | null;
  maxMs: number | null;
}

const OPTION_NAMES = optionNames<KeyLifetimeOptions>({ defaultMs: true, maxMs: true });
/** Beyond this a `Date` is invalid (±8.64e15 ms); kept well inside it. */
const MAX_LIFETIME_MS = 100 * 365 * 24 * 60 * 60 * 1000;

/** Validates `keyLifetime` at start-up: positive integers, `defaultMs <= maxMs`. */
export function resolveKeyLifetime(value: KeyLifetimeOptions | undefined): ResolvedKeyLifetime {
  if (value === undefined) return { defaultMs: null, maxMs: null };
  if (value === null || typeof value !== 'object') throw new Error('nestjs-api-auth: option "keyLifetime" must be an object.');
  assertKnownOptions(value, OPTION_NAMES, { of: 'ApiAuthModule', path: 'keyLifetime.' });
  const ms = (option: keyof KeyLifetimeOptions): number | null => {
    const n = value[option];
    if (n === undefined) return null;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > MAX_LIFETIME_MS) {
      throw new Error(
        `nestjs-api-auth: option "keyLifetime.${option}" must be a positive integer of milliseconds up to 100 years (got ${typeof n === 'number' ? n : typeof n}).`,
      );
    }
    return n;
  };
  const resolved = { defaultMs: ms('defaultMs'), maxMs: ms('maxMs') };
  if (resolved.defaultMs !== null && resolved.maxMs !== null && resolved.defaultMs > resolved.maxMs) {
    throw new Error(
      `nestjs-api-auth: option "keyLifetime.defaultMs" (${resolved.defaultMs}) must not exceed "keyLifetime.maxMs" (${resolved.maxMs}).`,
    );
  }
  return resolved;
}

/**
 * The expiry a new key gets: the one given (already validated), else now + `defaultMs`
 * when the caller said nothing (`undefined`). Refused past now + `maxMs`.
 */
export function expiryForNewKey(given: Date | null | undefined, now: Date, lifetime: ResolvedKeyLifetime): Date | null {
  const expiresAt = given === undefined ? (lifetime.defaultMs === null ? null : new Date(now.getTime() + lifetime.defaultMs)) : given;
  assertWithinMaxLifetime(expiresAt, now, lifetime);
  return expiresAt;
}

/** Refuses an expiry (`null`: never) later than now + `maxMs`. */
export function assertWithinMaxLifetime(expiresAt: Date | null, now: Date, lifetime: ResolvedKeyLifetime): void {
  if (lifetime.maxMs === null) return;
  if (expiresAt === null || expiresAt.getTime() > now.getTime() + lifetime.maxMs) {
    throw new ApiKeyValidationError('expiresAt', `must be set, and at most ${lifetime.maxMs} ms from now (keyLifetime.maxMs)`);
  }
}

/** A rotation's replacement: the old key's expiry, capped at now + `maxMs`. */
export function expiryForReplacement(inherited: Date | null, now: Date, lifetime: ResolvedKeyLifetime): Date | null {
  if (lifetime.maxMs === null) return inherited;
  const cap = now.getTime() + lifetime.maxMs;
  return inherited !== null && inherited.getTime() <= cap ? inherited : new Date(cap);
}
