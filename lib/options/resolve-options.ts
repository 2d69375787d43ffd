import { MemoryBackend } from '../backends/memory.backend.js';
import { createEventSink, type ApiKeyEventEmitter } from '../events/api-key-event.sink.js';
import { assertLegacyPrefixes } from '../keys/legacy-key-format.js';
import { assertValidPrefix } from '../keys/key-format.js';
import { environmentPrefix, isEnvironmentName } from '../policy/environment.js';
import { MemoryRateLimiter } from '../policy/memory.rate-limiter.js';
import type { RateLimiter } from '../policy/rate-limiter.interface.js';
import { NoopUsageWriteCoordinator, type UsageWriteCoordinator } from '../usage/usage-coordinator.js';
import { DEFAULT_PREFIX, type ApiAuthModuleOptions, type ResolvedApiAuthOptions } from '../api-auth.options.js';
import { assertKnownModuleOptions } from './module-option-names.js';
import { resolveKeyLifetime } from '../management/key-lifetime.js';
import { previousPepperHashers } from '../keys/previous-peppers.js';
import { resolvePurgeOptions } from '../purge/purge.options.js';
import { resolveSchemes } from './authorization-schemes.js';

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const BACKEND_METHODS = ['getByHash', 'getById', 'create', 'update', 'delete', 'listByOwner', 'recordUsage'] as const;

function fail(option: string, expectation: string, value: unknown): never {
  const shown = typeof value === 'string' || typeof value === 'number' ? JSON.stringify(value) : typeof value;
  throw new Error(`nestjs-api-auth: option "${option}" ${expectation} (got ${shown}).`);
}

function nonNegativeInteger(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(option, 'must be a non-negative integer', value);
  }
  return value;
}

function positiveInteger(option: string, value: unknown, fallback: number): number {
  const n = nonNegativeInteger(option, value, fallback);
  if (n === 0) fail(option, 'must be greater than 0', value);
  return n;
}

/** Merges user options over the defaults and validates them, naming any bad option. Runs once at start-up. */
export function resolveApiAuthOptions(options: ApiAuthModuleOptions | undefined | null): ResolvedApiAuthOptions {
  if (options == null || typeof options !== 'object') {
    throw new Error('nestjs-api-auth: ApiAuthModule options must be an object.');
  }
  assertKnownModuleOptions(options);
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  assertValidPrefix(prefix);

  const header = options.header ?? 'x-api-key';
  if (typeof header !== 'string' || !HEADER_NAME.test(header)) fail('header', 'must be a valid HTTP header name', header);
  if (header.toLowerCase() === 'authorization') {
    fail('header', 'must not be "authorization"; use the "bearer" option for Authorization: Bearer', header);
  }

  const schemes = resolveSchemes(options.schemes, options.bearer);

  const queryParam = options.queryParam ?? false;
  if (queryParam !== false && (typeof queryParam !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(queryParam))) {
    fail('queryParam', 'must be false or a parameter name of letters, digits, "_", "." or "-"', queryParam);
  }

  const backend = options.backend;
  if (backend !== undefined) {
    for (const method of BACKEND_METHODS) {
      if (typeof (backend as unknown as Record<string, unknown>)?.[method] !== 'function') {
        fail('backend', `must implement ApiKeyBackend (missing method "${method}")`, backend);
      }
    }
  }

  const pepper = options.pepper ?? null;
  if (pepper !== null && typeof pepper !== 'string' && !Buffer.isBuffer(pepper)) {
    fail('pepper', 'must be a string or a Buffer', pepper);
  }

  const usageCoordinator = options.usageCoordinator;
  if (usageCoordinator !== undefined && typeof (usageCoordinator as Partial<UsageWriteCoordinator>)?.claim !== 'function') {
    fail('usageCoordinator', 'must implement UsageWriteCoordinator (a claim method)', usageCoordinator);
  }

  const realm = options.realm ?? 'api';
  if (typeof realm !== 'string' || !/^[\x20-\x7e]{1,64}$/.test(realm) || realm.includes('"') || realm.includes('\\')) {
    fail('realm', 'must be 1-64 printable ASCII characters without quotes or backslashes', realm);
  }

  for (const flag of ['bearer', 'trackUsage'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') fail(flag, 'must be a boolean', options[flag]);
  }

  const environment = options.environment ?? null;
  if (environment !== null && !isEnvironmentName(environment)) {
    fail('environment', 'must be 1-16 letters and digits', environment);
  }
  const accepted = options.acceptEnvironments;
  if (accepted !== undefined) {
    if (environment === null) fail('acceptEnvironments', 'needs the "environment" option', 'without environment');
    if (!Array.isArray(accepted) || !accepted.every(isEnvironmentName)) {
      fail('acceptEnvironments', 'must be an array of environment names (1-16 letters and digits)', accepted);
    }
    if (!accepted.includes(environment)) fail('acceptEnvironments', `must include the "environment" (${environment})`, accepted.join(','));
  }
  const environments = environment === null ? [null] : [...new Set([environment, ...(accepted ?? [])])];
  for (const env of environments) assertValidPrefix(environmentPrefix(prefix, env), 'environment');

  const rateLimiter = options.rateLimiter;
  if (rateLimiter !== undefined && typeof (rateLimiter as Partial<RateLimiter>)?.consume !== 'function') {
    fail('rateLimiter', 'must implement RateLimiter (a consume method)', rateLimiter);
  }
  if (options.events !== undefined && typeof (options.events as Partial<ApiKeyEventEmitter>)?.emit !== 'function') {
    fail('events', 'must have an emit(event, payload) method, like EventEmitter2', options.events);
  }
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') fail('onEvent', 'must be a function', options.onEvent);
  if (options.purge !== undefined && backend !== undefined && typeof backend.purge !== 'function') {
    fail('purge', 'needs a backend that implements the optional method "purge"', backend);
  }
  const legacyKeyPrefixes = options.legacyKeyPrefixes ?? [];
  assertLegacyPrefixes(legacyKeyPrefixes);
  // Built once here only to validate; the verifier builds its own from the same list.
  previousPepperHashers(options.previousPeppers, pepper);
  if (options.defaultScopes !== undefined && !Array.isArray(options.defaultScopes)) {
    fail('defaultScopes', 'must be an array of scopes', options.defaultScopes);
  }
  if (options.defaultPolicy !== undefined && (options.defaultPolicy === null || typeof options.defaultPolicy !== 'object')) {
    fail('defaultPolicy', 'must be a policy object', options.defaultPolicy);
  }

  return {
    backend: backend ?? new MemoryBackend(),
    ownsBackend: backend === undefined,
    prefix,
    pepper,
    header: header.toLowerCase(),
    bearer: schemes.includes('bearer'),
    schemes,
    queryParam,
    trackUsage: options.trackUsage ?? true,
    usageIntervalMs: nonNegativeInteger('usageIntervalMs', options.usageIntervalMs, 60_000),
    usageCoordinator: usageCoordinator ?? new NoopUsageWriteCoordinator(),
    verifyTimeoutMs: nonNegativeInteger('verifyTimeoutMs', options.verifyTimeoutMs, 5_000),
    maxPendingLookups: nonNegativeInteger('maxPendingLookups', options.maxPendingLookups, 1_000),
    realm,
    maxMetadataBytes: positiveInteger('maxMetadataBytes', options.maxMetadataBytes, 8_192),
    maxScopes: positiveInteger('maxScopes', options.maxScopes, 100),
    maxKeysPerOwner: options.maxKeysPerOwner === null ? null : positiveInteger('maxKeysPerOwner', options.maxKeysPerOwner, 1_000),
    environment,
    environments,
    rateLimiter: rateLimiter ?? new MemoryRateLimiter(),
    emitEvent: createEventSink(options.events, options.onEvent),
    legacyKeyPrefixes: [...legacyKeyPrefixes],
    previousPeppers: [...(options.previousPeppers ?? [])],
    keyLifetime: resolveKeyLifetime(options.keyLifetime),
    defaultScopes: options.defaultScopes === undefined ? null : [...options.defaultScopes],
    defaultPolicy: options.defaultPolicy ?? null,
    purge: resolvePurgeOptions(options.purge),
  };
}
