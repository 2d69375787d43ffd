// Entry "nestjs-api-auth/backend": what only an author of a backend or a cache layer
// needs (docs/custom-backend.md). Pure: no optional peer is loaded from here.
export { applyChanges, CHANGEABLE_FIELDS, type ChangeableField } from './apply-changes.js';
export { hasCachedLookup, type CachedLookup } from '../cache/cached-lookup.interface.js';
export { decodeInvalidation, encodeInvalidation } from '../cache/invalidation-message.js';
export { INVALIDATION_TAG_COUNT, invalidationTag } from '../cache/invalidation-tag.js';
export { L1Cache, type CachedApiKey, type L1CacheOptions } from '../cache/l1-cache.js';
export { isPurgeable } from './purge-criteria.js';
export { API_KEY_STATUSES, compareNewestFirst, isBeforeCursor, keyStatusAt, matchesListAllFilters } from './key-status.js';
