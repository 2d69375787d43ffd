/** 32 or more hex digits: a key hash, or a digest derived from one. */
const HEX_DIGEST = /[0-9a-f]{32,}/gi;

/**
 * 40 or more characters of the base64 / base64url / base62 alphabets in a row: where a
 * digest in base64 (the Redis cache names its entries by a base64url digest of the
 * hash) or a plaintext key (prefix, `_`, 49 base62 characters) would show.
 */
const TOKEN_RUN = /[A-Za-z0-9_\-+/]{40,}={0,2}/g;

/**
 * Whether a run looks random rather than like words or a constant: letters of both
 * cases, and a digit or the length of a digest (43). A random 43-character base64
 * string lacks a digit about once in 1,500, but both cases only about once in 10^9.
 */
function looksRandom(run: string): boolean {
  return /[a-z]/.test(run) && /[A-Z]/.test(run) && (run.length >= 43 || /[0-9]/.test(run));
}

/**
 * A one-line reason for a log line, from an error the library did not write (a
 * custom backend's, a Redis client's, a listener's). Anything shaped like a key hash,
 * a digest of one or a key is removed and the text is bounded, so a store that puts
 * its input into its error messages cannot leak them into our logs. Every log site
 * that echoes a foreign error goes through here.
 */
export function safeErrorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message
    .replace(HEX_DIGEST, '[redacted]')
    .replace(TOKEN_RUN, (run) => (looksRandom(run) ? '[redacted]' : run))
    .slice(0, 300);
}

/**
 * A stand-in for a foreign error, to chain as a `cause`: its class name, its
 * message through {@link safeErrorMessage}, its `code` when it has a string one
 * (`ECONNREFUSED`), and no `cause` chain of its own. Thrown errors reach apps' filters
 * and loggers, which print causes; a driver's own error can quote the command's
 * arguments, and those include key hashes.
 */
export function redactedError(error: unknown): Error {
  const copy = new Error(safeErrorMessage(error));
  // Drivers often leave `name` as 'Error' on their subclasses (node-redis's SimpleError).
  copy.name = error instanceof Error ? (error.name !== 'Error' ? error.name : error.constructor.name) : 'Error';
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') (copy as Error & { code?: string }).code = code;
  return copy;
}
