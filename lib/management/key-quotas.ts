import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import { toApiKeyView } from '../api-key.interface.js';
import { ApiKeyEventName } from '../events/api-key.events.js';
import { changeQuota, readUsage, validateQuotaChange, type ApiKeyUsage, type QuotaBalance } from '../policy/quota-balance.js';
import type { QuotaChange } from '../policy/rate-limiter.interface.js';
import { StoreWrites } from './store-writes.js';

/**
 * `ApiKeyService.getUsage` and `adjustQuota`: the record by id (errors naming only a
 * minted-shaped id), then the limiter that holds its counters, and the event.
 */
export class KeyQuotas {
  private readonly store: StoreWrites;

  constructor(private readonly options: ResolvedApiAuthOptions) {
    this.store = new StoreWrites(options.backend, options.verifyTimeoutMs);
  }

  async usage(id: string): Promise<ApiKeyUsage> {
    return readUsage(this.options.rateLimiter, await this.store.require(id));
  }

  async adjust(id: string, change: QuotaChange): Promise<QuotaBalance> {
    const valid = validateQuotaChange(change);
    const record = await this.store.require(id);
    const balance = await changeQuota(this.options.rateLimiter, toApiKeyView(record), valid);
    const sink = this.options.emitEvent;
    if (sink !== null) {
      sink({ type: ApiKeyEventName.QuotaChanged, apiKeyId: record.id, ownerId: record.ownerId, change: valid, remaining: balance.remaining, at: new Date() });
    }
    return balance;
  }
}
