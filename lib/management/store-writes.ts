import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyNotFoundError, VersionConflictError } from '../api-key.errors.js';
import type { ApiKeyBackend, ApiKeyChanges } from '../backends/backend.interface.js';
import type { ApiKeyEvent } from '../events/api-key.events.js';
import { backendTimedOut } from '../verification/key-verifier.js';
import { requireIdShape, shownId } from './key-input.validation.js';

/** Most attempts of a write that retries on a version conflict (another writer moved the key). */
export const MAX_CONFLICT_RETRIES = 10;

/** Delivers an event built only when someone listens. */
export type EmitEvent = (build: () => ApiKeyEvent) => void;

/**
 * The management operations' reads and writes of one record: version pins, bounded
 * retries when another writer moved the key, and errors that name only an id shaped
 * like a minted one (a caller who pastes a plaintext key where an id belongs must not
 * see it in a 404 body or a log line).
 */
export class StoreWrites {
  constructor(
    readonly backend: ApiKeyBackend,
    private readonly verifyTimeoutMs: number,
  ) {}

  /** The stored record, or `ApiKeyNotFoundError`. */
  async require(id: string): Promise<ApiKey> {
    requireIdShape(id);
    const record = await this.backend.getById(id);
    if (!record) throw new ApiKeyNotFoundError(shownId(id));
    return record;
  }

  /** One backend `update`, pinned to `expectedVersion` when given. */
  async write(id: string, changes: ApiKeyChanges, expectedVersion: number | undefined): Promise<ApiKey> {
    try {
      return await this.backend.update(id, changes, expectedVersion === undefined ? undefined : { expectedVersion });
    } catch (error) {
      throw this.shownError(error, id);
    }
  }

  /**
   * A write built from the stored record, pinned to its version. With the caller's
   * `expectedVersion` a conflict is theirs to handle; without one, a conflict means
   * another writer got in between, so read again and rebuild (bounded). `build`
   * returns `null` when the stored record needs no write.
   */
  async withConflictRetry(
    id: string,
    expectedVersion: number | undefined,
    build: (current: ApiKey) => ApiKeyChanges | null,
    initial?: ApiKey,
  ): Promise<ApiKey> {
    for (let attempt = 0; ; attempt++) {
      const current = attempt === 0 && initial !== undefined ? initial : await this.require(id);
      const version = current.version ?? 1;
      if (expectedVersion !== undefined && version !== expectedVersion) {
        throw new VersionConflictError(shownId(id), expectedVersion, version);
      }
      const changes = build(current);
      if (changes === null) return current;
      try {
        return await this.backend.update(id, changes, { expectedVersion: version });
      } catch (error) {
        if (expectedVersion !== undefined || !(error instanceof VersionConflictError) || attempt >= MAX_CONFLICT_RETRIES) {
          throw this.shownError(error, id);
        }
      }
    }
  }

  /** A backend's not-found or conflict error again, naming only an id shaped like a minted one. */
  shownError(error: unknown, id: string): unknown {
    if (error instanceof ApiKeyNotFoundError) return new ApiKeyNotFoundError(shownId(id));
    if (error instanceof VersionConflictError) return new VersionConflictError(shownId(id), error.expectedVersion, error.actualVersion);
    return error;
  }

  /** For the rare waits (a failed create's clean-up, the shutdown flush); lookups use `lookupDeadlines`. */
  withTimeout<T>(promise: Promise<T>, ms = this.verifyTimeoutMs): Promise<T> {
    if (ms === 0) return promise;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(backendTimedOut(ms)), ms);
      timer.unref();
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}
