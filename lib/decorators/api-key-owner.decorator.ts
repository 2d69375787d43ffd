import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { getVerifiedApiKey } from '../transport/request-context.js';

/** Injects the verified key's `ownerId` (`undefined` on a `@Public()` route). */
export const ApiKeyOwner = createParamDecorator(
  (_data: unknown, context: ExecutionContext): string | undefined => getVerifiedApiKey(context)?.ownerId,
);
