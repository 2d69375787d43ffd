// The L1 cache and the invalidation contract. Pure: no Redis or other optional peer here.
export { CachedBackend, withL1Cache, type CacheInvalidation, type CachedBackendOptions } from './cached.backend.js';
export { hasCachedLookup, type CachedLookup } from './cached-lookup.interface.js';
export type { ApiKeyInvalidation, ApiKeyInvalidationBus } from './invalidation-bus.interface.js';
export { decodeInvalidation, encodeInvalidation } from './invalidation-message.js';
export { INVALIDATION_TAG_COUNT, invalidationTag } from './invalidation-tag.js';
export { L1Cache, type CachedApiKey, type L1CacheOptions } from './l1-cache.js';
export { LocalInvalidationBus } from './local-invalidation.bus.js';
