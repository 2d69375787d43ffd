import type { ExecutionContext } from '@nestjs/common';
import type { ApiKeyView } from '../api-key.interface.js';
import { readRequestApiKey } from './express-request-property.js';
import { isGuardedHandler } from '../decorators/route-access.js';

/**
 * The object the guard attaches the verified key to, for any transport: the HTTP
 * request, the WebSocket client, the RPC context, or the HTTP request behind a
 * GraphQL resolver (`context.req`), found without importing `@nestjs/graphql`.
 */
export function getAuthCarrier(context: ExecutionContext): Record<string, unknown> | undefined {
  const type = context.getType<string>();
  // `switchToHttp()` allocates three closures and reshapes the context on every call;
  // HTTP arguments are `[request, response, next]`, so index 0 is the request.
  if (type === 'http') return context.getArgByIndex(0);
  if (type === 'ws') return context.switchToWs().getClient();
  if (type === 'rpc') return context.switchToRpc().getContext();
  if (type === 'graphql') {
    const gqlContext = context.getArgByIndex(2) as { req?: Record<string, unknown>; request?: Record<string, unknown> } | undefined;
    return gqlContext?.req ?? gqlContext?.request;
  }
  return context.getArgByIndex(0);
}

/**
 * The key the guard verified for this call, or `undefined` (e.g. on a `@Public()` route).
 * Outside HTTP, only to a handler the guard checks: a WebSocket client's attachment
 * outlives the message it was made for (docs/internals.md#the-key-on-websockets-request-contextts).
 */
export function getVerifiedApiKey(context: ExecutionContext): ApiKeyView | undefined {
  if (context.getType<string>() !== 'http' && !isGuardedHandler(context.getClass(), context.getHandler())) return undefined;
  const carrier = getAuthCarrier(context);
  return carrier === undefined || carrier === null ? undefined : (readRequestApiKey(carrier) as ApiKeyView | undefined);
}
