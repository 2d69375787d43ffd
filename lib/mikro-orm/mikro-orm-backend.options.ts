import { assertKnownOptions, optionNames } from '../options/assert-known-options.js';
import { DEFAULT_TABLE_NAME, validateIdentifier } from './api-key.table.js';
import type { LookupPoolSettings } from './lookup-pool.js';

/** Settings of {@link MikroOrmBackendOptions.lookupPool}. */
export interface MikroOrmLookupPoolOptions {
  /** Most connections the lookup pool opens, per backend (1-100). Default `4`. */
  max?: number;
  /** An idle lookup connection is closed after this many milliseconds (0: never). Default `10000`. */
  idleTimeoutMillis?: number;
}

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
  /**
   * MikroORM 6 only: run key lookups (`getByHash`, the guard's read of every uncached
   * request) on a small `pg` pool of the backend's own, instead of through the ORM's
   * knex instance, whose per-query work costs a lookup about as much as the rest of the
   * request. Built from the ORM's connection settings (`clientUrl` or host/port/...,
   * `password`, `driverOptions.connection`), opened on first lookup with
   * `application_name` `nestjs-api-auth lookups`, and ended by `close()` (which Nest
   * calls at application shutdown). It costs up to `max` more connections per
   * instance. Every other statement still runs on the ORM's pool. MikroORM 7 looks
   * keys up through the ORM's own `pg` pool already and ignores this option.
   * `true` uses the defaults. Default `false`.
   */
  lookupPool?: boolean | MikroOrmLookupPoolOptions;
}

/** {@link MikroOrmBackendOptions} with defaults applied and values checked. */
export interface ResolvedMikroOrmBackendOptions {
  tableName: string;
  schema: string | undefined;
  pageSize: number;
  ensureSchema: boolean;
  /** `null` when off. */
  lookupPool: LookupPoolSettings | null;
}

const OPTION_NAMES = optionNames<MikroOrmBackendOptions>({ tableName: true, schema: true, pageSize: true, ensureSchema: true, lookupPool: true });
const LOOKUP_POOL_OPTION_NAMES = optionNames<MikroOrmLookupPoolOptions>({ max: true, idleTimeoutMillis: true });

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
    lookupPool: resolveLookupPool(options.lookupPool ?? false),
  };
}

function resolveLookupPool(option: boolean | MikroOrmLookupPoolOptions): LookupPoolSettings | null {
  if (option === false) return null;
  const given = option === true ? {} : option;
  if (given === null || typeof given !== 'object') {
    throw new Error(`nestjs-api-auth: MikroOrmBackend lookupPool must be a boolean or an object, got ${String(option)}.`);
  }
  assertKnownOptions(given, LOOKUP_POOL_OPTION_NAMES, { of: 'MikroOrmBackend', path: 'lookupPool.' });
  const max = given.max ?? 4;
  if (!Number.isSafeInteger(max) || max < 1 || max > 100) {
    throw new Error(`nestjs-api-auth: MikroOrmBackend lookupPool.max must be an integer from 1 to 100, got ${String(max)}.`);
  }
  const idleTimeoutMillis = given.idleTimeoutMillis ?? 10_000;
  if (!Number.isSafeInteger(idleTimeoutMillis) || idleTimeoutMillis < 0) {
    throw new Error(`nestjs-api-auth: MikroOrmBackend lookupPool.idleTimeoutMillis must be a non-negative integer, got ${String(idleTimeoutMillis)}.`);
  }
  return { max, idleTimeoutMillis };
}
