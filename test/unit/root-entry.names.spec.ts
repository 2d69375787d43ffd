import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as root from 'nestjs-api-auth';

// The root entry is what a user writes in an app. Every name it exports is listed here,
// so a new one is a decision made in review: backend authors' helpers belong to
// `nestjs-api-auth/backend`, internals to no entry at all.

const INDEX = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));

/** Names `lib/index.ts` exports, types included; `export *` is reported as `*`. */
function exportedNames(source: string): string[] {
  const file = ts.createSourceFile(INDEX, source, ts.ScriptTarget.ES2022, true);
  const names: string[] = [];
  for (const statement of file.statements) {
    if (!ts.isExportDeclaration(statement)) continue;
    const clause = statement.exportClause;
    if (!clause) names.push('*');
    else if (ts.isNamedExports(clause)) names.push(...clause.elements.map((e) => e.name.text));
    else names.push(`* as ${clause.name.text}`);
  }
  return names.sort();
}

const ROOT_NAMES = [
  'API_AUTH_OPTIONS',
  'API_AUTH_ROUTES_OPTIONS',
  'API_KEY_BACKEND',
  'API_KEY_COST_KEY',
  'API_KEY_REQUEST_PROPERTY',
  'ApiAuthModule',
  'ApiAuthModuleExtras',
  'ApiAuthModuleOptions',
  'ApiAuthPurgeOptions',
  'ApiAuthRoutesOptions',
  'ApiKey',
  'ApiKeyAlreadyRotatedError',
  'ApiKeyDisabledEvent',
  'ApiKeyEnabledEvent',
  'ApiKeyListAllPage',
  'ApiKeyRevokedError',
  'ApiKeyStatus',
  'ListAllOptions',
  'ListAllPageOptions',
  'ListAllUnsupportedError',
  'SetKeyStatusOptions',
  'ApiKeyAuthenticationDeniedEvent',
  'ApiKeyBackend',
  'ApiKeyChanges',
  'ApiKeyCost',
  'ApiKeyCursor',
  'ApiKeyDeletedEvent',
  'ApiKeyError',
  'ApiKeyErrorCode',
  'ApiKeyEvent',
  'ApiKeyEventEmitter',
  'ApiKeyEventListener',
  'ApiKeyEventMap',
  'ApiKeyEventName',
  'ApiKeyFailure',
  'ApiKeyGuard',
  'ApiKeyImportedEvent',
  'ApiKeyInvalidation',
  'ApiKeyInvalidationBus',
  'ApiKeyIssuedEvent',
  'ApiKeyLimitReachedError',
  'ApiKeyMetadata',
  'ApiKeyNotFoundError',
  'ApiKeyOwner',
  'ApiKeyPage',
  'ApiKeyPageResource',
  'ApiKeyPolicy',
  'ApiKeyPurgedEvent',
  'ApiKeyRehashedEvent',
  'ApiKeyResource',
  'ApiKeyRevokedEvent',
  'ApiKeyRotatedEvent',
  'ApiKeyService',
  'ApiKeyUpdatedEvent',
  'ApiKeyValidationError',
  'ApiKeyView',
  'AuthenticationFailureCode',
  'AuthenticationResult',
  'BackendUnavailableError',
  'CacheInvalidation',
  'CachedBackend',
  'CachedBackendOptions',
  'CounterRules',
  'CurrentApiKey',
  'DEFAULT_ADMIN_SCOPE',
  'DEFAULT_PREFIX',
  'DEFAULT_SELF_SERVICE_SCOPE',
  'DuplicateApiKeyError',
  'ExtractedKey',
  'IS_PUBLIC_KEY',
  'ImportApiKeyInput',
  'ImportApiKeySource',
  'InjectApiKeyBackend',
  'IssueApiKeyInput',
  'IssuedApiKey',
  'IssuedApiKeyResource',
  'KeyFormat',
  'KeyHasher',
  'KeyLifetimeOptions',
  'KeyRejection',
  'LimitDecision',
  'LimitRequest',
  'ListByOwnerOptions',
  'LocalInvalidationBus',
  'ManagementErrorBody',
  'MemoryBackend',
  'MemoryRateLimiter',
  'MemoryRateLimiterOptions',
  'NoopUsageWriteCoordinator',
  'ParsedKey',
  'Public',
  'PurgeKeysOptions',
  'PurgeOptions',
  'PurgeResult',
  'QuotaRule',
  'QuotaStatus',
  'REQUIRED_ENVIRONMENT_KEY',
  'REQUIRED_SCOPES_KEY',
  'RateLimitRule',
  'RateLimitStatus',
  'RateLimiter',
  'RequireAnyScope',
  'RequireEnvironment',
  'RequireScopes',
  'ResolvedApiAuthOptions',
  'ResolvedApiAuthRoutesOptions',
  'RevokeApiKeyOptions',
  'RotateApiKeyOptions',
  'RotatedApiKey',
  'RotatedApiKeyResource',
  'ScopeRequirement',
  'UnsupportedBackendOperationError',
  'UpdateApiKeyInput',
  'UpdateApiKeyOptions',
  'UpdateOptions',
  'UsageWriteCoordinator',
  'VersionConflictError',
  'getVerifiedApiKey',
  'toApiKeyView',
  'withL1Cache',
  // Issue 21 (21policy): quota balances, consume(), optional keys.
  'ApiKeyQuotaChangedEvent',
  'ApiKeyUsage',
  'ConsumeOptions',
  'ConsumeOutcome',
  'LimitUsage',
  'MAX_QUOTA_BALANCE',
  'OPTIONAL_API_KEY_KEY',
  'OptionalApiKey',
  'QuotaBalance',
  'QuotaBalanceResource',
  'QuotaChange',
  'RateLimiterCapabilityError',
];

describe('the root entry', () => {
  const names = exportedNames(readFileSync(INDEX, 'utf8'));

  it('exports exactly the listed names, types included, and no `export *`', () => {
    expect(names).toEqual([...ROOT_NAMES].sort());
  });

  it('exports no internal: option resolution, the module token, the cache wire format, backend helpers', () => {
    for (const internal of ['resolveApiAuthOptions', 'API_AUTH_MODULE_OPTIONS', 'encodeInvalidation', 'applyChanges', 'L1Cache']) {
      expect(names).not.toContain(internal);
      expect(root).not.toHaveProperty(internal);
    }
  });

  it('exports at run time every listed value that is not a type', () => {
    const values = Object.keys(root).sort();
    expect(values.length).toBeGreaterThan(40);
    expect(values.every((name) => ROOT_NAMES.includes(name))).toBe(true);
  });
});
