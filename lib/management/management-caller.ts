import { ForbiddenException, UnauthorizedException } from '@nestjs/common';
import type { ApiKeyView } from '../api-key.interface.js';
import type { ApiKeyPolicy } from '../policy/api-key-policy.js';
import { hasLimits } from '../policy/policy.validation.js';
import { grantsScope } from '../scopes/scope-patterns.js';
import type { ResolvedApiAuthRoutesOptions } from './api-auth-routes.options.js';
import type { ManagementErrorBody } from './management-exception.filter.js';
import { refusalForScopes, type SelfServiceRefusal } from './self-service.rules.js';

// Who is calling the management routes, and the checks that depend only on the caller.

/** What the calling key may do here. */
export interface Caller {
  id: string;
  ownerId: string;
  scopes: readonly string[];
  environment: string | null;
  policy: ApiKeyPolicy | null;
  expiresAt: Date | null;
  /** Holds the admin scope: every owner's keys, any scope. */
  admin: boolean;
  /** May read every owner's keys: holds the admin or the read scope. */
  readsAll: boolean;
  /** May write: holds the admin or the self-service scope (a read-only key does not). */
  writes: boolean;
}

export function forbidden(code: string, message: string): ForbiddenException {
  const body: ManagementErrorBody = { statusCode: 403, error: 'Forbidden', code, message };
  return new ForbiddenException(body);
}

/** Throws the 403 of a self-service rule (lib/management/self-service.rules.ts) that refused. */
export function refuse(refusal: SelfServiceRefusal | null): void {
  if (refusal !== null) throw forbidden(refusal.code, refusal.message);
}

/** The 403 of a key that holds none of `scopes` (the `null` ones are off). */
function insufficientScope(scopes: ReadonlyArray<string | null>): ForbiddenException {
  return new ForbiddenException({
    statusCode: 403,
    error: 'Forbidden',
    code: 'insufficient_scope',
    message: 'The API key lacks a scope this operation requires.',
    requiredScopes: scopes.filter((s): s is string => s !== null),
    scopeMatch: 'any',
  });
}

/** The calling key as the routes see it; 401/403 when it holds none of the management scopes. */
export function callerOf(apiKey: ApiKeyView | undefined, routes: ResolvedApiAuthRoutesOptions): Caller {
  // The guard has run; this only holds if someone wired the controller without it.
  if (!apiKey) {
    throw new UnauthorizedException({
      statusCode: 401,
      error: 'Unauthorized',
      code: 'missing_api_key',
      message: 'An API key is required.',
    });
  }
  const { adminScope, selfServiceScope } = routes;
  const readScope = routes.readScope ?? null;
  // As the guard reads scopes: a held pattern (`api-keys:*`) grants the scopes under it.
  const admin = adminScope !== null && grantsScope(apiKey.scopes, adminScope);
  const selfService = selfServiceScope !== null && grantsScope(apiKey.scopes, selfServiceScope);
  const reader = readScope !== null && grantsScope(apiKey.scopes, readScope);
  if (!admin && !selfService && !reader) throw insufficientScope([adminScope, selfServiceScope, readScope]);
  return {
    id: apiKey.id,
    ownerId: apiKey.ownerId,
    scopes: apiKey.scopes,
    environment: apiKey.environment ?? null,
    policy: apiKey.policy ?? null,
    expiresAt: apiKey.expiresAt,
    admin,
    readsAll: admin || reader,
    writes: admin || selfService,
  };
}

/** {@link callerOf} for a write: a read-only key answers 403 `insufficient_scope`. */
export function writerOf(apiKey: ApiKeyView | undefined, routes: ResolvedApiAuthRoutesOptions): Caller {
  const caller = callerOf(apiKey, routes);
  if (!caller.writes) throw insufficientScope([routes.adminScope, routes.selfServiceScope]);
  return caller;
}

/** Refuses a self-service caller scopes it does not hold itself. */
export function assertGrantable(caller: Caller, scopes: readonly string[]): void {
  if (!caller.admin) refuse(refusalForScopes(caller, { scopes }));
}

/**
 * Policies are the admin's to set: limits exist to bound what a customer's keys may
 * do, so a self-service caller that could write them could also lift them.
 */
export function assertPolicyUntouched(caller: Caller, policy: ApiKeyPolicy | null | undefined): void {
  if (caller.admin || policy === undefined) return;
  throw forbidden('forbidden_policy', 'Only an admin key can set or change a key policy.');
}

/**
 * The caller's policy for a key it issues: the same allowlist, and the same limits on
 * the same counters (the caller's counter key, else its id), so N keys share one budget.
 */
export function inheritedPolicy(caller: Caller): ApiKeyPolicy | null {
  if (!caller.policy) return null;
  const { counterKey, ...rules } = caller.policy;
  return hasLimits(rules) ? { ...rules, counterKey: counterKey ?? caller.id } : rules;
}

/** Refuses a caller without the admin scope (403 `insufficient_scope`, naming that scope). */
export function assertAdmin(caller: Caller, routes: ResolvedApiAuthRoutesOptions, message: string): void {
  if (caller.admin) return;
  throw new ForbiddenException({
    statusCode: 403,
    error: 'Forbidden',
    code: 'insufficient_scope',
    message,
    requiredScopes: [routes.adminScope].filter((scope): scope is string => scope !== null),
    scopeMatch: 'all',
  });
}
