import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyValidationError } from '../api-key.errors.js';
import { wellFormed, type FieldKind, type StoredField } from './redis-record.layout.js';
import { UnreadableRecordError } from './redis-record.v1.js';

/**
 * A field's value as the JSON array of encodings 2 and 3 holds it (before JSON): what
 * `redis-record.layout.ts` says of each kind.
 */
export function encodeValue(field: StoredField, kind: FieldKind, value: unknown): unknown {
  switch (kind) {
    case 'text':
      return wellFormed(String(value));
    case 'text?':
      return value === null || value === undefined ? null : wellFormed(String(value));
    case 'date':
      return epochMs(field, value);
    case 'date?':
      return value === null || value === undefined ? null : epochMs(field, value);
    case 'list':
      return (value as string[]).map((item) => wellFormed(String(item)));
    case 'json':
      return JSON.stringify(value);
    case 'json?':
      // `policy`: an empty value is none.
      return value ? JSON.stringify(value) : null;
    case 'version':
      return value ?? 1;
    case 'entry':
      return null;
  }
}

function epochMs(field: StoredField, value: unknown): number {
  const ms = value instanceof Date ? value.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw new ApiKeyValidationError(field as keyof ApiKey, 'must be a valid Date');
  return ms;
}

/** A stored `text` value, or `UnreadableRecordError` (encodings 2 and 3 read them alike). */
export function storedText(value: unknown): string {
  if (typeof value !== 'string') throw new UnreadableRecordError();
  return value;
}

/** A stored `text?` value: `null` for `null`, and for `undefined` (a field appended after the record was written). */
export function storedOptionalText(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}
