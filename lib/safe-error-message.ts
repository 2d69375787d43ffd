/** 32 or more hex digits: a key hash, or a digest derived from one. */
const HEX_DIGEST = /[0-9a-f]{32,}/gi;

/**
 * A one-line reason for a log line, from an error the library did not write (a
 * custom backend's, a Redis client's, a listener's). Anything shaped like a key hash
 * is removed and the text is bounded, so a store that puts its input into its error
 * messages cannot leak hashes into our logs. Every log site that echoes a foreign
 * error goes through here.
 */
export function safeErrorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(HEX_DIGEST, '[redacted]').slice(0, 300);
}
