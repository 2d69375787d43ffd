import { SetMetadata } from '@nestjs/common';
import { IS_PUBLIC_KEY } from '../api-auth.constants.js';

/**
 * Lets a route (or every route of a controller) through `ApiKeyGuard` without a key.
 *
 * The nearest metadata wins: `@Public()` on a method opens it inside a controller that
 * requires scopes, and `@RequireScopes()`, `@RequireAnyScope()` or `@RequireEnvironment()`
 * on a method guards it inside a `@Public()` controller. On one level (the same method,
 * or the same class), a requirement beats `@Public()`: a contradiction fails closed.
 *
 * A public handler never sees a key: `@CurrentApiKey()` and `@ApiKeyOwner()` give
 * `undefined`, also on a WebSocket whose earlier messages were checked.
 */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC_KEY, true);
