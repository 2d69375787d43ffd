import { SetMetadata } from '@nestjs/common';
import { IS_PUBLIC_KEY } from '../api-auth.constants.js';

/**
 * Lets a route (or every route of a controller) through a globally registered
 * `ApiKeyGuard` without a key.
 */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC_KEY, true);
