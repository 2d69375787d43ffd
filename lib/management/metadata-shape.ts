import { ApiKeyValidationError } from '../api-key.errors.js';

/**
 * Deepest nesting a key's `metadata` may have: the object itself is level 1. Far more
 * than any label or reference needs, and far below where `JSON.stringify` (recursive
 * in V8) overflows the stack: a request body nested thousands deep parses fine but
 * used to fail serialisation with a `RangeError`, a 500.
 */
export const MAX_METADATA_DEPTH = 32;

/**
 * Refuses `metadata` nested deeper than {@link MAX_METADATA_DEPTH} or holding more
 * values than `maxBytes` (each JSON value takes at least one byte, so such metadata
 * cannot fit anyway), with an `ApiKeyValidationError` naming `metadata`. Walks
 * without recursion and stops at the first excess, so it costs at most `maxBytes`
 * steps whatever it is given; a cycle is refused as too deep. Run it before anything
 * serialises the value. Shared by the service and the management routes.
 */
export function assertMetadataShape(metadata: unknown, maxBytes: number): void {
  const stack: Array<{ value: unknown; depth: number }> = [{ value: metadata, depth: 1 }];
  let values = 0;
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    if (++values > maxBytes) {
      throw new ApiKeyValidationError('metadata', `must be at most ${maxBytes} bytes as JSON`);
    }
    if (value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') continue;
    if (depth > MAX_METADATA_DEPTH) {
      throw new ApiKeyValidationError('metadata', `must be nested at most ${MAX_METADATA_DEPTH} levels deep`);
    }
    const children = Array.isArray(value) ? value : Object.values(value);
    for (let i = 0; i < children.length && values + stack.length <= maxBytes; i++) {
      stack.push({ value: children[i], depth: depth + 1 });
    }
  }
}
