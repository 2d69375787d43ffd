/** Letters and digits, 1-16: an environment name is part of every key's prefix. */
const ENVIRONMENT_PATTERN = /^[A-Za-z0-9]{1,16}$/;

/** Whether `value` can name an environment. */
export function isEnvironmentName(value: unknown): value is string {
  return typeof value === 'string' && ENVIRONMENT_PATTERN.test(value);
}

/**
 * The key prefix of an environment: `sk_` and `live` give `sk_live_`. The `_` that
 * ends it, and names without `_`, mean no environment's prefix starts another's, so
 * the offline prefix check alone tells environments apart.
 */
export function environmentPrefix(prefix: string, environment: string | null): string {
  return environment === null ? prefix : `${prefix}${environment}_`;
}
