/**
 * Checks of single option values shared by the components the library ships, so each
 * refuses a bad value with the same message shape:
 * `nestjs-api-auth: <component> option "<name>" must be ... (got <value>).`
 */

/** `value`, or `fallback` when it is `undefined`; anything but a positive safe integer throws. */
export function positiveIntegerOption(of: string, option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new Error(`nestjs-api-auth: ${of} option "${option}" must be a positive integer (got ${String(value)}).`);
  }
  return value;
}

/** Letters, digits and `_.:-`: safe inside Redis key and channel names. */
const REDIS_NAMESPACE = /^[A-Za-z0-9_.:-]{1,128}$/;

/** A Redis key or channel namespace option, default `"api-auth"`. */
export function redisNamespaceOption(of: string, value: unknown): string {
  const namespace = value ?? 'api-auth';
  if (typeof namespace !== 'string' || !REDIS_NAMESPACE.test(namespace)) {
    throw new Error(`nestjs-api-auth: ${of} option "namespace" must be 1-128 letters, digits or "_.:-" (got ${JSON.stringify(namespace)}).`);
  }
  return namespace;
}
