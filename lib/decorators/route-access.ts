import type { Reflector } from '@nestjs/core';
import { IS_PUBLIC_KEY, REQUIRED_ENVIRONMENT_KEY, REQUIRED_SCOPES_KEY } from '../api-auth.constants.js';
import type { ScopeRequirement } from './require-scopes.decorator.js';

/** What a route asks of the guard, from its decorators. */
export interface RouteAccess {
  /** Whether the guard lets calls through without a key. */
  isPublic: boolean;
  /** The scopes a key needs; `undefined` for none. */
  requirement: ScopeRequirement | undefined;
  /** The environments a key must belong to; `undefined` for any. */
  environments: readonly string[] | undefined;
}

type Target = Parameters<Reflector['get']>[1];

/**
 * Reads the access rules of a handler of `controller`. The nearest metadata wins:
 *
 * - a method's own `@Public()`, `@RequireScopes()`, `@RequireAnyScope()` or
 *   `@RequireEnvironment()` decides over anything on its class: `@RequireScopes()` on a
 *   method guards it inside a `@Public()` controller, and `@Public()` on a method opens
 *   it inside a guarded one;
 * - at one level, a requirement beats `@Public()` (a contradiction fails closed);
 * - the requirements themselves are taken method first, then class, each on its own.
 *
 * The guard and the OpenAPI document read routes through this one function, so the
 * document cannot disagree with what the server enforces.
 */
export function readRouteAccess(reflector: Reflector, handler: Target, controller: Target): RouteAccess {
  const targets = [handler, controller];
  return {
    isPublic: isPublicAt(reflector, handler) ?? isPublicAt(reflector, controller) ?? false,
    requirement: reflector.getAllAndOverride<ScopeRequirement | undefined>(REQUIRED_SCOPES_KEY, targets),
    environments: reflector.getAllAndOverride<readonly string[] | undefined>(REQUIRED_ENVIRONMENT_KEY, targets),
  };
}

/** Whether `target` itself opens (`true`) or guards (`false`) the route; `undefined` when it says neither. */
function isPublicAt(reflector: Reflector, target: Target): boolean | undefined {
  if (
    reflector.get<unknown>(REQUIRED_SCOPES_KEY, target) !== undefined ||
    reflector.get<unknown>(REQUIRED_ENVIRONMENT_KEY, target) !== undefined
  ) {
    return false;
  }
  return reflector.get<boolean | undefined>(IS_PUBLIC_KEY, target) === true ? true : undefined;
}

/**
 * The handlers an `ApiKeyGuard` checks (not public), per controller: subclasses share
 * their base's handlers, and only the pair says whether the guard runs.
 */
const guardedHandlers = new WeakMap<object, WeakSet<object>>();

/** Records that the guard checks every call of `handler` of `controller`. Called once per handler. */
export function markGuarded(controller: Target, handler: Target): void {
  let handlers = guardedHandlers.get(controller);
  if (handlers === undefined) guardedHandlers.set(controller, (handlers = new WeakSet()));
  handlers.add(handler);
}

/**
 * Whether an `ApiKeyGuard` checks the calls of `handler` of `controller`. For the
 * parameter decorators: outside HTTP the carrier of the key (a WebSocket client) serves
 * every message of a connection, and only a handler the guard checked may read it.
 */
export function isGuardedHandler(controller: Target, handler: Target): boolean {
  return guardedHandlers.get(controller)?.has(handler) === true;
}
