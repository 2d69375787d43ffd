// The root entry: importing it must never load MikroORM, Redis or cache-manager.
export { ApiAuthModule } from './api-auth.module.js';
export type { ApiAuthModuleExtras } from './api-auth.module-definition.js';
export { type ApiAuthModuleOptions, type ResolvedApiAuthOptions, DEFAULT_PREFIX } from './api-auth.options.js';
export {
  API_AUTH_OPTIONS,
  API_KEY_COST_KEY,
  API_KEY_REQUEST_PROPERTY,
  IS_PUBLIC_KEY,
  OPTIONAL_API_KEY_KEY,
  REQUIRED_ENVIRONMENT_KEY,
  REQUIRED_SCOPES_KEY,
} from './api-auth.constants.js';
export { ApiKeyGuard, type ApiKeyFailure, type ExtractedKey } from './api-key.guard.js';
export { ApiKeyService } from './api-key.service.js';
export type { AuthenticationResult } from './verification/key-verifier.js';
export type {
  ApiKeyPage,
  ImportApiKeyInput,
  ImportApiKeySource,
  IssueApiKeyInput,
  IssuedApiKey,
  RevokeApiKeyOptions,
  RotateApiKeyOptions,
  RotatedApiKey,
  UpdateApiKeyInput,
  UpdateApiKeyOptions,
} from './management/key-inputs.js';
export { toApiKeyView, type ApiKey, type ApiKeyMetadata, type ApiKeyView } from './api-key.interface.js';
export {
  ApiKeyAlreadyRotatedError,
  ApiKeyError,
  ApiKeyErrorCode,
  ApiKeyLimitReachedError,
  ApiKeyNotFoundError,
  ApiKeyValidationError,
  BackendUnavailableError,
  DuplicateApiKeyError,
  UnsupportedBackendOperationError,
  VersionConflictError,
  type AuthenticationFailureCode,
} from './api-key.errors.js';
export {
  API_KEY_BACKEND,
  type ApiKeyBackend,
  type ApiKeyChanges,
  type ApiKeyCursor,
  type ListByOwnerOptions,
  type PurgeOptions,
  type UpdateOptions,
} from './backends/backend.interface.js';
export { MemoryBackend } from './backends/memory.backend.js';
export { ApiKeyOwner } from './decorators/api-key-owner.decorator.js';
export { CurrentApiKey } from './decorators/current-api-key.decorator.js';
export { InjectApiKeyBackend } from './decorators/inject-api-key-backend.decorator.js';
export { Public } from './decorators/public.decorator.js';
export { OptionalApiKey } from './decorators/optional-api-key.decorator.js';
export { RequireAnyScope, RequireScopes, type ScopeRequirement } from './decorators/require-scopes.decorator.js';
export { getVerifiedApiKey } from './transport/request-context.js';
export { RequireEnvironment } from './decorators/require-environment.decorator.js';
export {
  ApiKeyEventName,
  type ApiKeyAuthenticationDeniedEvent,
  type ApiKeyDeletedEvent,
  type ApiKeyEvent,
  type ApiKeyEventMap,
  type ApiKeyImportedEvent,
  type ApiKeyIssuedEvent,
  type ApiKeyPurgedEvent,
  type ApiKeyRehashedEvent,
  type ApiKeyRevokedEvent,
  type ApiKeyRotatedEvent,
  type ApiKeyQuotaChangedEvent,
  type ApiKeyUpdatedEvent,
} from './events/api-key.events.js';
export type { ApiKeyEventEmitter, ApiKeyEventListener } from './events/api-key-event.sink.js';
export { ApiKeyCost } from './decorators/api-key-cost.decorator.js';
export { MemoryRateLimiter, type MemoryRateLimiterOptions } from './policy/memory.rate-limiter.js';
export type {
  CounterRules,
  LimitDecision,
  LimitRequest,
  QuotaStatus,
  RateLimitStatus,
  RateLimiter,
} from './policy/rate-limiter.interface.js';
export { MAX_QUOTA_BALANCE, type LimitUsage, type QuotaChange } from './policy/rate-limiter.interface.js';
export { RateLimiterCapabilityError, type ApiKeyUsage, type QuotaBalance } from './policy/quota-balance.js';
export type { ConsumeOptions, ConsumeOutcome } from './verification/key-consumption.js';
export type { ApiKeyPolicy, QuotaRule, RateLimitRule } from './policy/api-key-policy.js';
export { KeyFormat, KeyHasher, type KeyRejection, type ParsedKey } from './keys/index.js';
export {
  API_AUTH_ROUTES_OPTIONS,
  DEFAULT_ADMIN_SCOPE,
  DEFAULT_SELF_SERVICE_SCOPE,
  type ApiAuthRoutesOptions,
  type ResolvedApiAuthRoutesOptions,
} from './management/api-auth-routes.options.js';
export type {
  ApiKeyPageResource,
  ApiKeyResource,
  IssuedApiKeyResource,
  RotatedApiKeyResource,
} from './management/api-key.resource.js';
export type { QuotaBalanceResource } from './management/quota-balance.resource.js';
export type { ManagementErrorBody } from './management/management-exception.filter.js';
export { CachedBackend, withL1Cache, type CacheInvalidation, type CachedBackendOptions } from './cache/cached.backend.js';
export type { ApiKeyInvalidation, ApiKeyInvalidationBus } from './cache/invalidation-bus.interface.js';
export { LocalInvalidationBus } from './cache/local-invalidation.bus.js';
export { NoopUsageWriteCoordinator, type UsageWriteCoordinator } from './usage/usage-coordinator.js';
export type { ApiAuthPurgeOptions, PurgeKeysOptions, PurgeResult } from './purge/purge.options.js';
export type { KeyLifetimeOptions } from './management/key-lifetime.js';
// Disable/enable and the listing across owners (issue 21).
export type { SetKeyStatusOptions } from './management/key-status.js';
export type { ApiKeyListAllPage, ListAllPageOptions } from './management/list-all.js';
export { ApiKeyRevokedError, ListAllUnsupportedError } from './api-key.errors.js';
export type { ApiKeyStatus, ListAllOptions } from './backends/backend.interface.js';
export type { ApiKeyDisabledEvent, ApiKeyEnabledEvent } from './events/api-key.events.js';
