import type { Reflector } from '@nestjs/core';
import { IS_PUBLIC_KEY, OPTIONAL_API_KEY_KEY, REQUIRED_ENVIRONMENT_KEY, REQUIRED_SCOPES_KEY } from '../api-auth.constants.js';
import type { ScopeRequirement } from './require-scopes.decorator.js';

/** What a route asks of the guard, from its decorators. */
export interface RouteAccess {
  /** Whether the guard lets calls through without a key. */
  isPublic: boolean;
  /**
   * `@OptionalApiKey()`: calls without a key go through, a key that is present is
   * checked. Then `requirement` and `environments` are `undefined`.
   */
  optional: boolean;
  /** The scopes a key needs; `undefined` for none. */
  requirement: ScopeRequirement | undefined;
  /** The environments a key must belong to; `undefined` for any. */
  environments: readonly string[] | undefined;
}

type Target = Parameters<Reflector['get']>[1];

/**
 * Reads the access rules of a handler of `controller`. The nearest metadata wins (a
 * method over its class; at one level a requirement beats `@Public()`), as
 * docs/protect-routes.md#which-decorator-wins-the-nearest-one explains. The guard and the
 * OpenAPI document both read routes here, so they cannot disagree.
 */
export function readRouteAccess(reflector: Reflector, handler: Target, controller: Target): RouteAccess {
  const targets = [handler, controller];
  const level = levelAt(reflector, handler) ?? levelAt(reflector, controller) ?? 'guarded';
  if (level === 'optional') return { isPublic: false, optional: true, requirement: undefined, environments: undefined };
  return {
    isPublic: level === 'public',
    optional: false,
    requirement: reflector.getAllAndOverride<ScopeRequirement | undefined>(REQUIRED_SCOPES_KEY, targets),
    environments: reflector.getAllAndOverride<readonly string[] | undefined>(REQUIRED_ENVIRONMENT_KEY, targets),
  };
}

/**
 * What `target` itself says of the route, the strictest first: a requirement guards
 * it, `@OptionalApiKey()` checks a key only when one is sent, `@Public()` opens it;
 * `undefined` when it says none of these.
 */
function levelAt(reflector: Reflector, target: Target): 'guarded' | 'optional' | 'public' | undefined {
  if (
    reflector.get<unknown>(REQUIRED_SCOPES_KEY, target) !== undefined ||
    reflector.get<unknown>(REQUIRED_ENVIRONMENT_KEY, target) !== undefined
  ) {
    return 'guarded';
  }
  if (reflector.get<boolean | undefined>(OPTIONAL_API_KEY_KEY, target) === true) return 'optional';
  return reflector.get<boolean | undefined>(IS_PUBLIC_KEY, target) === true ? 'public' : undefined;
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
