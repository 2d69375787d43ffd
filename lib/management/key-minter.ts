import { randomUUID } from 'node:crypto';
import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import { toApiKeyView, type ApiKey } from '../api-key.interface.js';
import { ApiKeyLimitReachedError, DuplicateApiKeyError } from '../api-key.errors.js';
import type { KeyFormat } from '../keys/key-format.js';
import { sameKeyHash, type KeyHasher } from '../keys/key-hasher.js';
import type { IssuedApiKey } from './key-inputs.js';
import type { StoreWrites } from './store-writes.js';

/** The fields of a new record that the caller decides; the minter adds the key, its hash and the timestamps. */
export type MintedFields = Pick<
  ApiKey,
  'ownerId' | 'name' | 'scopes' | 'metadata' | 'expiresAt' | 'rotatedFromId' | 'environment' | 'policy' | 'issuedById'
>;

/**
 * Creates new keys: generates the plaintext in the environment's format, stores its
 * record, and guarantees that a create which failed leaves no usable key behind.
 * Shared by issue, self-service issue and rotation.
 */
export class KeyMinter {
  constructor(
    private readonly options: ResolvedApiAuthOptions,
    private readonly formats: ReadonlyArray<{ format: KeyFormat; environment: string | null }>,
    private readonly hasher: KeyHasher,
    private readonly store: StoreWrites,
    private readonly countByOwner: (ownerId: string) => Promise<number>,
  ) {}

  /** Stores a new key under `id` (default a random UUID). */
  async mint(fields: MintedFields, now: Date, id?: string): Promise<IssuedApiKey> {
    const format = this.formatFor(fields.environment);
    // A collision of 256-bit secrets is not going to happen; one retry covers a buggy RNG shim.
    for (let attempt = 0; ; attempt++) {
      const key = format.generate();
      const record: ApiKey = {
        id: id ?? randomUUID(),
        keyHash: this.hasher.hash(key),
        hint: format.hint(key),
        ...fields,
        createdAt: now,
        updatedAt: now,
        revokedAt: null,
        lastUsedAt: null,
        version: 1,
        disabledAt: null,
      };
      try {
        const stored = await this.store.backend.create(record);
        return { key, apiKey: toApiKeyView(stored) };
      } catch (error) {
        // A given id that is taken stays taken: only a fresh key (or random id) can help.
        if (attempt === 0 && error instanceof DuplicateApiKeyError && (id === undefined || error.field === 'keyHash')) continue;
        if (!(error instanceof DuplicateApiKeyError)) await this.removeIfStored(record);
        throw error;
      }
    }
  }

  /** Refuses one more key for an owner at `maxKeysPerOwner` (a count, then the write: see the option). */
  async assertRoomFor(ownerId: string): Promise<void> {
    const max = this.options.maxKeysPerOwner;
    if (max !== null && (await this.countByOwner(ownerId)) >= max) throw new ApiKeyLimitReachedError(max);
  }

  /** The key format of an environment (the first format without environments). */
  formatFor(environment: string | null): KeyFormat {
    return (this.formats.find((f) => f.environment === environment) ?? this.formats[0]!).format;
  }

  /**
   * After a `create` that failed in a way that may still have written (a timeout, a
   * lost connection), removes the record if it was stored: the caller gets the error,
   * not the plaintext, so nobody could ever use it, and a rotation's replacement left
   * behind would refuse every retry as "already rotated". Only this attempt's record
   * goes (same id and key hash), never a concurrent rotation's. Best effort, bounded
   * by `verifyTimeoutMs`: a store that is down keeps what it has.
   */
  private async removeIfStored(record: ApiKey): Promise<void> {
    try {
      const stored = await this.store.withTimeout(this.store.backend.getById(record.id));
      if (stored !== null && sameKeyHash(stored.keyHash, record.keyHash)) await this.store.withTimeout(this.store.backend.delete(record.id));
    } catch {
      // Nothing more to do; the create's own error is what the caller gets.
    }
  }
}
