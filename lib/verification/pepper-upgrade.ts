import { Logger } from '@nestjs/common';
import type { ApiKeyBackend } from '../backends/backend.interface.js';
import type { ApiKeyEventSink } from '../events/api-key-event.sink.js';
import { ApiKeyEventName } from '../events/api-key.events.js';
import { safeErrorMessage } from '../internal/safe-error-message.js';

/**
 * Moves a key found under a previous pepper to the current one (`replaceHash`), once:
 * the backend's compare-and-set lets exactly one of any number of concurrent first uses,
 * on any number of instances, make the change and emit `api-key.rehashed`. Never fails
 * the verification it runs in: the key authenticated either way.
 */
export class PepperUpgrade {
  private readonly logger = new Logger('ApiAuth');
  private warnedMissing = false;
  private failing = false;

  constructor(
    private readonly backend: ApiKeyBackend,
    private readonly emit: ApiKeyEventSink | null,
    private readonly bound: <T>(promise: Promise<T>) => Promise<T>,
  ) {}

  async upgrade(id: string, fromHash: string, toHash: string): Promise<void> {
    if (typeof this.backend.replaceHash !== 'function') {
      if (!this.warnedMissing) {
        this.warnedMissing = true;
        this.logger.warn(
          'The API key backend has no replaceHash: keys hashed under a previous pepper keep authenticating, each use costing the extra lookups, but are never upgraded to the current pepper.',
        );
      }
      return;
    }
    let replaced: boolean;
    try {
      replaced = await this.bound(this.backend.replaceHash(id, fromHash, toHash));
    } catch (error) {
      if (!this.failing) {
        this.failing = true;
        // The redacted message only: a store's error text can quote the hashes it was given.
        this.logger.warn(`Could not upgrade an API key hash to the current pepper; will retry on its next use: ${safeErrorMessage(error)}`);
      }
      return;
    }
    this.failing = false;
    if (replaced && this.emit !== null) this.emit({ type: ApiKeyEventName.Rehashed, id, at: new Date() });
  }
}
