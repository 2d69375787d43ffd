import type { ApiKey } from '../../api-key.interface.js';
import { BackendUnavailableError } from '../../api-key.errors.js';
import type { ApiKeyChanges, ListAllOptions, ListByOwnerOptions, PurgeOptions, UpdateOptions } from '../../backends/backend.interface.js';
import type { RedisBackendCommands } from '../redis-backend.commands.js';
import type { ResolvedRedisBackendOptions } from '../redis-backend.options.js';
import type { RedisCommandClient } from '../redis-client.types.js';
import { decodeStoredRecord } from '../redis-record.codec.js';

/**
 * What `RedisBackend` delegates to its key layout (option `layout`): every operation
 * but verification, which is one `GET` of {@link RedisLayout.recordKey} in every layout.
 * Internal: the layouts are chosen by the option, never implemented by users.
 */
export interface RedisLayout {
  /** The prefix of every key of the layout, its version included. */
  readonly keyPrefix: string;
  /** The key of the record stored under `keyHash`: what verification GETs. */
  recordKey(keyHash: string): string;
  getById(id: string): Promise<ApiKey | null>;
  create(apiKey: ApiKey): Promise<ApiKey>;
  update(id: string, changes: ApiKeyChanges, options?: UpdateOptions): Promise<ApiKey>;
  delete(id: string): Promise<void>;
  recordUsage(id: string, usedAt: Date, staleBefore: Date): Promise<boolean>;
  listByOwner(ownerId: string, options: ListByOwnerOptions): AsyncIterable<ApiKey>;
  countByOwner(ownerId: string): Promise<number>;
  listByIssuer(issuerId: string): AsyncIterable<ApiKey>;
  listAll(options: ListAllOptions): AsyncIterable<ApiKey>;
  backfillListAllIndex(): Promise<void>;
  purge(options: PurgeOptions): Promise<number>;
  rebuildPurgeIndex(): Promise<number>;
  replaceHash(id: string, fromHash: string, toHash: string): Promise<boolean>;
}

/** What every layout is built from: the backend's client, command path and options. */
export interface RedisLayoutContext {
  client: RedisCommandClient;
  commands: RedisBackendCommands;
  options: ResolvedRedisBackendOptions;
  /** `<namespace><layout version>:`. */
  base: string;
}

/**
 * A stored record, or `BackendUnavailableError` for a value this version cannot read.
 * With `keyHash` (a lookup by hash), `null` for a record of another hash.
 */
export function decodeRecord(operation: string, reply: unknown, keyHash?: string): ApiKey | null {
  try {
    return decodeStoredRecord(reply, keyHash);
  } catch (error) {
    throw new BackendUnavailableError(`Redis answered ${operation} with ${(error as Error).message}`, { cause: error });
  }
}

/** `value` with the glob characters of SCAN's MATCH escaped, so it matches itself only. */
export function escapeGlob(value: string): string {
  return value.replace(/[*?[\]\\]/g, '\\$&');
}
