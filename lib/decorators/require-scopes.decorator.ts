import { SetMetadata } from '@nestjs/common';
import { REQUIRED_SCOPES_KEY } from '../api-auth.constants.js';

/** What a route demands of a key's scopes; read by the guard. */
export interface ScopeRequirement {
  scopes: readonly string[];
  /** `all`: the key must hold every scope; `any`: at least one. */
  match: 'all' | 'any';
}

function requirement(scopes: string[], match: ScopeRequirement['match'], name: string): ScopeRequirement {
  if (scopes.length === 0 || scopes.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new Error(`nestjs-api-auth: @${name}() needs at least one non-empty scope.`);
  }
  return Object.freeze({ scopes: Object.freeze([...new Set(scopes)]), match });
}

/**
 * The key must hold every one of these scopes (403 `insufficient_scope` otherwise).
 *
 * The nearest metadata wins: on a method it replaces the controller's requirement, and
 * it guards the method even inside a `@Public()` controller; `@Public()` on a method
 * opens it inside a controller with this requirement. On one level, this beats
 * `@Public()` (a contradiction fails closed).
 */
export const RequireScopes = (...scopes: string[]): MethodDecorator & ClassDecorator =>
  SetMetadata(REQUIRED_SCOPES_KEY, requirement(scopes, 'all', 'RequireScopes'));

/**
 * The key must hold at least one of these scopes (403 `insufficient_scope` otherwise).
 * Precedence as for {@link RequireScopes}: the nearest metadata wins, and on one level
 * this beats `@Public()`.
 */
export const RequireAnyScope = (...scopes: string[]): MethodDecorator & ClassDecorator =>
  SetMetadata(REQUIRED_SCOPES_KEY, requirement(scopes, 'any', 'RequireAnyScope'));
