import { SetMetadata } from '@nestjs/common';
import { OPTIONAL_API_KEY_KEY } from '../api-auth.constants.js';

/**
 * The route runs with or without a key: a call without one goes through with
 * `@CurrentApiKey()` and `@ApiKeyOwner()` giving `undefined`; a call with one is
 * checked as on any guarded route (401 for a malformed, unknown, expired or revoked
 * key; 403 `ip_not_allowed`; the key's rate limits and quota) and the handler gets the
 * key. DRF's `HasAPIKey | IsAuthenticated`, done as one decorator.
 *
 * A route open to callers without a key demands nothing of a key's scopes or
 * environment: `@RequireScopes()` or `@RequireEnvironment()` at the same level makes
 * the key required (a contradiction fails closed), and one from the class does not
 * apply. Otherwise the nearest metadata wins, as for `@Public()`: `@OptionalApiKey()`
 * on a method makes it optional inside a `@Public()` or a guarded controller, and on
 * one level it beats `@Public()` (a present key is still checked).
 */
export const OptionalApiKey = (): MethodDecorator & ClassDecorator => SetMetadata(OPTIONAL_API_KEY_KEY, true);
