import { ApiKeyValidationError } from '../api-key.errors.js';
import type { ApiKeyPolicy } from '../policy/api-key-policy.js';
import { validatePolicy } from '../policy/policy.validation.js';
import { validateScopes } from './key-input.validation.js';

/** The module's `defaultScopes` and `defaultPolicy`, validated: `null` when unset. */
export interface KeyDefaults {
  scopes: string[] | null;
  policy: ApiKeyPolicy | null;
}

/**
 * Validates `defaultScopes` and `defaultPolicy` at start-up with the rules keys are held
 * to. A default policy may not name a `counterKey`: every key issued without a policy
 * would then share one budget.
 */
export function resolveKeyDefaults(scopes: unknown, policy: unknown, maxScopes: number): KeyDefaults {
  const startUp = (option: string, run: () => unknown) => {
    try {
      return run();
    } catch (error) {
      if (error instanceof ApiKeyValidationError) throw new Error(`nestjs-api-auth: option "${option}" is invalid. ${error.message}`);
      throw error;
    }
  };
  const resolvedScopes = scopes === undefined ? null : (startUp('defaultScopes', () => validateScopes(scopes, maxScopes)) as string[]);
  const resolvedPolicy = policy === undefined ? null : (startUp('defaultPolicy', () => validatePolicy(policy)) as ApiKeyPolicy | null);
  if (resolvedPolicy?.counterKey !== undefined) {
    throw new Error('nestjs-api-auth: option "defaultPolicy" must not set "counterKey": every key issued without a policy would share one budget.');
  }
  return { scopes: resolvedScopes, policy: resolvedPolicy };
}

/**
 * What a new key gets for a field the caller did not give (`undefined`). An explicit
 * value, `[]` and `null` included, is the caller's choice and stands.
 */
export function withDefaults<T extends { scopes?: string[]; policy?: ApiKeyPolicy | null }>(input: T, defaults: KeyDefaults): T {
  if ((input.scopes !== undefined || defaults.scopes === null) && (input.policy !== undefined || defaults.policy === null)) return input;
  return {
    ...input,
    ...(input.scopes === undefined && defaults.scopes !== null ? { scopes: [...defaults.scopes] } : {}),
    ...(input.policy === undefined && defaults.policy !== null ? { policy: structuredClone(defaults.policy) } : {}),
  };
}
