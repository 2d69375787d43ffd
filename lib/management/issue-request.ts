import type { Caller } from './management-caller.js';
import { assertGrantable, assertPolicyUntouched, forbidden, inheritedPolicy, refuse } from './management-caller.js';
import type { IssueRequest } from './management.validation.js';
import { expiryForIssue, grantableDefaultScopes, refusalForResult } from './self-service.rules.js';

/**
 * The issue request as `caller` may make it, with the owner resolved. An admin's passes
 * as it is. A self-service caller's is refused when it names another owner or
 * environment, a policy, or scopes the caller lacks; otherwise the new key lives under
 * the caller's own limits, in its environment, and no longer than the caller: minting
 * keys must not multiply a budget, shed an allowlist or outlive the key that minted them.
 */
export function issueRequestOf(
  caller: Caller,
  parsed: IssueRequest,
  defaultScopes: readonly string[],
): IssueRequest & { ownerId: string; scopes: string[] } {
  // Scopes left out (allowed with the module's defaultScopes) are resolved here, not by
  // the service: a self-service caller gets only the defaults it holds.
  const scopes = parsed.scopes ?? (caller.admin ? [...defaultScopes] : grantableDefaultScopes(defaultScopes, caller));
  const request = { ...parsed, scopes };
  const ownerId = request.ownerId ?? caller.ownerId;
  if (!caller.admin && ownerId !== caller.ownerId) {
    throw forbidden('forbidden_owner', 'A self-service key can only issue keys for its own owner.');
  }
  assertGrantable(caller, request.scopes);
  if (caller.admin) return { ...request, ownerId };
  assertPolicyUntouched(caller, request.policy);
  if (request.environment !== undefined && request.environment !== caller.environment) {
    throw forbidden('forbidden_environment', 'A self-service key can only issue keys in its own environment.');
  }
  const shaped = {
    ...request,
    ownerId,
    // A caller without a policy leaves it out, so the module's defaultPolicy applies.
    policy: inheritedPolicy(caller) ?? undefined,
    environment: caller.environment ?? undefined,
    // A caller that never expires leaves it out too, so keyLifetime.defaultMs applies.
    expiresAt: request.expiresAt === undefined && caller.expiresAt === null ? undefined : expiryForIssue(request.expiresAt, caller),
  };
  refuse(refusalForResult(caller, { ...shaped, id: '', environment: caller.environment, expiresAt: shaped.expiresAt ?? null }));
  return shaped;
}
