import { EntitySchema } from '@mikro-orm/core';
import type { ApiKey } from '../api-key.interface.js';
import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';
import { DEFAULT_TABLE_NAME, apiKeyTableNames, validateIdentifier } from './api-key.table.js';

/** Where {@link createApiKeyEntity} puts the table. */
export interface ApiKeyEntityOptions {
  /** Table name. Default `"api_keys"`. Pass the same value to `MikroOrmBackend`'s `tableName`. */
  tableName?: string;
  /** PostgreSQL schema of the table. Default: none (the connection's `search_path`, usually `public`). */
  schema?: string;
  /**
   * Entity name inside your ORM, for `em.find('ApiKey', ...)` and migrations. Change it
   * only if your application already has an entity called `ApiKey`. Default `"ApiKey"`.
   */
  entityName?: string;
}

const ENTITY_OPTION_NAMES = optionNames<ApiKeyEntityOptions>({ tableName: true, schema: true, entityName: true });

/**
 * Builds the MikroORM entity of the key table, for a table name or schema other than
 * the default. Register the result (not {@link ApiKeyEntity}) in `MikroORM.init({ entities })`
 * and give `MikroOrmBackend` the same `tableName` and `schema`.
 */
export function createApiKeyEntity(options: ApiKeyEntityOptions = {}): EntitySchema<ApiKey> {
  // A misspelled `tableName` here and a right one in MikroOrmBackend would point the
  // ORM's migrations and the backend at different tables.
  assertKnownOptions(options, ENTITY_OPTION_NAMES, { of: 'createApiKeyEntity' });
  const tableName = validateIdentifier('tableName', options.tableName ?? DEFAULT_TABLE_NAME);
  const schema = options.schema === undefined ? undefined : validateIdentifier('schema', options.schema);
  const names = apiKeyTableNames(tableName);
  // Column names are spelled out (fieldName) rather than left to the naming strategy:
  // the backend's SQL relies on exactly these names whatever strategy the app uses.
  return new EntitySchema<ApiKey>({
    name: options.entityName ?? 'ApiKey',
    tableName,
    schema,
    properties: {
      id: { type: 'uuid', primary: true, fieldName: 'id' },
      name: { type: 'string', length: 255, fieldName: 'name' },
      ownerId: { type: 'string', length: 255, fieldName: 'owner_id' },
      // Hidden so that serialising an entity (toJSON, toObject) never hands the hash out.
      keyHash: { type: 'string', length: 128, fieldName: 'key_hash', hidden: true },
      hint: { type: 'string', length: 64, fieldName: 'hint' },
      scopes: { type: 'json', fieldName: 'scopes' },
      metadata: { type: 'json', fieldName: 'metadata' },
      // Millisecond precision, as JavaScript dates: what is read back equals what was
      // written, and listByOwner's (created_at, id) cursor compares exactly.
      createdAt: { type: 'datetime', length: 3, fieldName: 'created_at' },
      updatedAt: { type: 'datetime', length: 3, fieldName: 'updated_at' },
      expiresAt: { type: 'datetime', length: 3, fieldName: 'expires_at', nullable: true },
      revokedAt: { type: 'datetime', length: 3, fieldName: 'revoked_at', nullable: true },
      lastUsedAt: { type: 'datetime', length: 3, fieldName: 'last_used_at', nullable: true },
      rotatedFromId: { type: 'uuid', fieldName: 'rotated_from_id', nullable: true },
      environment: { type: 'string', length: 16, fieldName: 'environment', nullable: true },
      policy: { type: 'json', fieldName: 'policy', nullable: true },
      // A plain integer, not MikroORM's `version: true`: the backend's own `update`
      // statement increments and checks it, and the ORM must not manage it as well.
      version: { type: 'integer', fieldName: 'version', default: 1 },
      issuedById: { type: 'string', length: 64, fieldName: 'issued_by_id', nullable: true },
      disabledAt: { type: 'datetime', length: 3, fieldName: 'disabled_at', nullable: true },
    },
    uniques: [{ name: names.keyHashUnique, properties: ['keyHash'] }],
    indexes: [
      { name: names.ownerIndex, properties: ['ownerId', 'createdAt', 'id'] },
      { name: names.issuerIndex, properties: ['issuedById', 'id'] },
      { name: names.expiresIndex, properties: ['expiresAt'] },
      { name: names.revokedIndex, properties: ['revokedAt'] },
      { name: names.createdIndex, properties: ['createdAt', 'id'] },
    ],
  });
}

/**
 * The MikroORM entity of the default `api_keys` table. Add it to your ORM's
 * `entities` to manage the table with your migrations:
 *
 * ```ts
 * MikroORM.init({ entities: [...yourEntities, ApiKeyEntity], ... })
 * ```
 */
export const ApiKeyEntity: EntitySchema<ApiKey> = createApiKeyEntity();
