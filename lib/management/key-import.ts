import { randomUUID } from 'node:crypto';
import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyValidationError } from '../api-key.errors.js';
import type { KeyHasher } from '../keys/key-hasher.js';
import type { LegacyKeyFormat } from '../keys/legacy-key-format.js';
import { LEGACY, type KeyEnvironment } from '../verification/key-verifier.js';
import {
  assertKnownFields,
  HASH_PATTERN,
  HINT_PATTERN,
  IMPORT_FIELDS,
  IMPORT_SOURCE_FIELDS,
  validateEnvironment,
  validateNewKey,
  validatePast,
} from './key-input.validation.js';
import type { ImportApiKeyInput, ImportApiKeySource } from './key-inputs.js';
import type { KeyMinter } from './key-minter.js';
import { withDefaults, type KeyDefaults } from './key-defaults.js';
import { expiryForNewKey } from './key-lifetime.js';

/** What an import needs from the service it runs in. */
export interface KeyImportContext {
  readonly options: ResolvedApiAuthOptions;
  readonly legacy: LegacyKeyFormat;
  readonly hasher: KeyHasher;
  readonly minter: KeyMinter;
  /** The module's `defaultScopes` / `defaultPolicy`, for an input without them. */
  readonly defaults: KeyDefaults;
  environmentOf(key: string): KeyEnvironment | undefined;
}

/**
 * Validates a key minted elsewhere and stores its record (see `ApiKeyService.import`):
 * from the plaintext, which must be in a format the guard accepts, or from an unpeppered
 * SHA-256 and a hint.
 */
export async function importKey(context: KeyImportContext, source: ImportApiKeySource, input: ImportApiKeyInput): Promise<ApiKey> {
  if (source == null || typeof source !== 'object') throw new ApiKeyValidationError('source', 'must be { key } or { keyHash }');
  if (input == null || typeof input !== 'object') throw new ApiKeyValidationError('input', 'must be an object');
  assertKnownFields(source, IMPORT_SOURCE_FIELDS);
  assertKnownFields(input, IMPORT_FIELDS);
  const { options, minter } = context;
  const now = new Date();
  const identity = 'key' in source ? fromPlaintext(context, source.key, input) : fromHash(context, source, input);
  const createdAt = input.createdAt === undefined ? now : validatePast('createdAt', input.createdAt, now);
  const fields = validateNewKey(withDefaults({ ...input, environment: undefined }, context.defaults), now, options);
  fields.expiresAt = expiryForNewKey(input.expiresAt === undefined ? undefined : fields.expiresAt, now, options.keyLifetime);
  const record: ApiKey = {
    id: randomUUID(),
    ...fields,
    // After `fields`: the environment comes from the key (or the input), not the default.
    ...identity,
    rotatedFromId: null,
    createdAt,
    updatedAt: now,
    revokedAt: null,
    lastUsedAt: null,
    version: 1,
    disabledAt: null,
  };
  await minter.assertRoomFor(record.ownerId);
  return options.backend.create(record);
}

type Identity = Pick<ApiKey, 'keyHash' | 'hint' | 'environment'>;

function fromPlaintext(context: KeyImportContext, key: unknown, input: ImportApiKeyInput): Identity {
  const found = typeof key === 'string' ? context.environmentOf(key) : undefined;
  if (found === undefined) {
    throw new ApiKeyValidationError(
      'key',
      "is neither in this deployment's key format nor starts with a legacyKeyPrefixes prefix, so the guard would never accept it",
    );
  }
  const plaintext = key as string;
  const keyHash = context.hasher.hash(plaintext);
  if (found === LEGACY) {
    return { keyHash, hint: context.legacy.hint(plaintext), environment: validateEnvironment(input.environment, context.options) };
  }
  if (input.environment !== undefined && input.environment !== found) {
    throw new ApiKeyValidationError('environment', "must match the environment in the key's prefix");
  }
  return { keyHash, hint: context.minter.formatFor(found).hint(plaintext), environment: found };
}

function fromHash(context: KeyImportContext, source: { keyHash: unknown; hint?: unknown }, input: ImportApiKeyInput): Identity {
  if (context.hasher.peppered) {
    throw new ApiKeyValidationError(
      'keyHash',
      'cannot be imported while a pepper is configured: keys are stored as HMAC-SHA256 with it, which a plain SHA-256 cannot be turned into',
    );
  }
  const hash = typeof source.keyHash === 'string' ? source.keyHash.toLowerCase() : '';
  if (!HASH_PATTERN.test(hash)) throw new ApiKeyValidationError('keyHash', 'must be a hex SHA-256 digest (64 characters)');
  if (source.hint !== undefined && (typeof source.hint !== 'string' || !HINT_PATTERN.test(source.hint))) {
    throw new ApiKeyValidationError('hint', 'must be 1-64 printable characters');
  }
  return { keyHash: hash, hint: (source.hint as string | undefined) ?? '(imported)', environment: validateEnvironment(input.environment, context.options) };
}
