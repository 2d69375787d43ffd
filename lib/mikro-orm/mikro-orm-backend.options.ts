import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';
import { DEFAULT_TABLE_NAME, validateIdentifier } from './api-key.table.js';

/** Options of `new MikroOrmBackend(orm, options)`. */
export interface MikroOrmBackendOptions {
  /**
   * Table holding the keys. Default `"api_keys"`. When you change it, register
   * `createApiKeyEntity({ tableName })` in your ORM instead of `ApiKeyEntity`.
   */
  tableName?: string;
  /**
   * PostgreSQL schema of the table, e.g. `"auth"`. Default: none, so the connection's
   * `search_path` decides (usually `public`). Must match the entity's `schema`.
   */
  schema?: string;
  /**
   * Rows `listByOwner` fetches per round trip. Listing never holds more than one page
   * in memory, however many keys an owner has. Default `500`.
   */
  pageSize?: number;
  /**
   * Create the table, its constraints and its index if they are missing: at start-up
   * (Nest's `onModuleInit`) and, should that fail, before the first operation. Safe to
   * run from many instances at once. Default `false`: in production, manage the table
   * with your migrations (see `ApiKeyEntity`), and give the app a role that cannot run DDL.
   */
  ensureSchema?: boolean;
}

/** {@link MikroOrmBackendOptions} with defaults applied and values checked. */
export interface ResolvedMikroOrmBackendOptions {
  tableName: string;
  schema: string | undefined;
  pageSize: number;
  ensureSchema: boolean;
}

const OPTION_NAMES = optionNames<MikroOrmBackendOptions>({ tableName: true, schema: true, pageSize: true, ensureSchema: true });

/** Applies defaults and rejects bad values, and unknown options, with an error naming the option. */
export function resolveMikroOrmBackendOptions(options: MikroOrmBackendOptions = {}): ResolvedMikroOrmBackendOptions {
  assertKnownOptions(options, OPTION_NAMES, { of: 'MikroOrmBackend' });
  const pageSize = options.pageSize ?? 500;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > 10_000) {
    throw new Error(`nestjs-api-auth: MikroOrmBackend pageSize must be an integer from 1 to 10000, got ${String(pageSize)}.`);
  }
  return {
    tableName: validateIdentifier('tableName', options.tableName ?? DEFAULT_TABLE_NAME),
    schema: options.schema === undefined ? undefined : validateIdentifier('schema', options.schema),
    pageSize,
    ensureSchema: options.ensureSchema ?? false,
  };
}
