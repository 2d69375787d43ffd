import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { ApiKeyView } from '../api-key.interface.js';
import { getVerifiedApiKey } from '../transport/request-context.js';

/**
 * Injects the verified key's record (never its hash), or one field of it:
 * `@CurrentApiKey() key: ApiKeyView`, `@CurrentApiKey('scopes') scopes: string[]`.
 */
export const CurrentApiKey = createParamDecorator(
  (field: keyof ApiKeyView | undefined, context: ExecutionContext) => {
    const apiKey = getVerifiedApiKey(context);
    return field ? apiKey?.[field] : apiKey;
  },
);
