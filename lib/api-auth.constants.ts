/** Injection token of the resolved (validated, defaulted) module options. */
export const API_AUTH_OPTIONS = Symbol('API_AUTH_OPTIONS');

/** Metadata key set by `@Public()`. */
export const IS_PUBLIC_KEY = 'nestjs-api-auth:public';

/** Metadata key set by `@RequireScopes()` and `@RequireAnyScope()`. */
export const REQUIRED_SCOPES_KEY = 'nestjs-api-auth:scopes';

/** Property of the request (or WebSocket client) the guard attaches the verified key to. */
export const API_KEY_REQUEST_PROPERTY = 'apiKey';

/** Metadata key set by `@ApiKeyCost()`. */
export const API_KEY_COST_KEY = 'nestjs-api-auth:cost';

/** Metadata key set by `@RequireEnvironment()`. */
export const REQUIRED_ENVIRONMENT_KEY = 'nestjs-api-auth:environment';

/** Metadata key set by `@OptionalApiKey()`. */
export const OPTIONAL_API_KEY_KEY = 'nestjs-api-auth:optional';
