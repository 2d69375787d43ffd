import type { ApiKey } from '../api-key.interface.js';
import { ApiKeyValidationError } from '../api-key.errors.js';
import { asciiJson } from '../internal/ascii-json.js';
import { ownerEntry, RECORD_LAYOUT, wellFormed, type FieldKind, type StoredField } from './redis-record.layout.js';
import { UnreadableRecordError } from './redis-record.v1.js';

/**
 * Record encoding 3: `3`, then the values of RECORD_LAYOUT in order, each after one
 * separator (U+001F, which no value holds raw), ASCII throughout. Verification reads it
 * with `indexOf` and `slice`: no JSON parser, no number parser, no string table.
 *
 * What each kind is stored as (an empty value is `null` for the nullable kinds):
 * - `text`, `text?`, `entry`: the string itself when it is printable ASCII and does not
 *   start with `"`; otherwise its JSON string literal, ASCII (`text?` stores `""` for
 *   an empty string, which an empty value would read as `null`);
 * - `date`, `date?`, `version`: a decimal integer (epoch milliseconds), every digit;
 * - `list`: empty for none; the items joined by `,` when each is non-empty printable
 *   ASCII without a `,` and the first does not start with `[`; else a JSON array;
 * - `json`, `json?`: the value's JSON text, ASCII (`metadata`, `policy`).
 *
 * A record written before a field was appended has fewer values and reads it as
 * `null`. The Lua side (`redis-record.lua.ts`) reads and writes the same text.
 */

/** The separator before every value. */
export const V3_SEPARATOR = '\x1f';
/** What an encoding-3 record starts with. */
export const V3_HEAD = `3${V3_SEPARATOR}`;

const PLAIN = /^[\x20-\x7e]*$/;
const PLAIN_ITEM = /^[\x20-\x2b\x2d-\x7e]+$/;

function plainText(value: string): boolean {
  return PLAIN.test(value) && value.charCodeAt(0) !== 34;
}

function textValue(value: unknown, nullable: boolean): string {
  if (value === null || value === undefined) {
    if (nullable) return '';
    throw new UnreadableRecordError();
  }
  const text = wellFormed(String(value));
  if (text === '' && nullable) return '""';
  return plainText(text) ? text : asciiJson(JSON.stringify(text));
}

function dateValue(field: StoredField, value: unknown, nullable: boolean): string {
  if (nullable && (value === null || value === undefined)) return '';
  const ms = value instanceof Date ? value.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw new ApiKeyValidationError(field as keyof ApiKey, 'must be a valid Date');
  return String(ms);
}

function listValue(items: readonly string[]): string {
  const texts = items.map((item) => wellFormed(String(item)));
  if (texts.length === 0) return '';
  if (texts.every((item) => PLAIN_ITEM.test(item)) && texts[0]!.charCodeAt(0) !== 91) return texts.join(',');
  return asciiJson(JSON.stringify(texts));
}

function encodeValue(record: ApiKey, field: StoredField, kind: FieldKind): string {
  switch (kind) {
    case 'text':
      return textValue(record[field as keyof ApiKey], false);
    case 'text?':
      return textValue(record[field as keyof ApiKey], true);
    case 'date':
      return dateValue(field, record[field as keyof ApiKey], false);
    case 'date?':
      return dateValue(field, record[field as keyof ApiKey], true);
    case 'list':
      return listValue(record.scopes);
    case 'json':
      return asciiJson(JSON.stringify(record.metadata));
    case 'json?':
      // `policy`: an empty value is none.
      return record.policy ? asciiJson(JSON.stringify(record.policy)) : '';
    case 'version':
      return String(record.version ?? 1);
    case 'entry':
      return textValue(ownerEntry(record.createdAt, record.id), false);
  }
}

/** A new record in encoding 3, owner entry included. */
export function encodeV3(record: ApiKey): string {
  let out = '3';
  for (const [field, kind] of RECORD_LAYOUT) out += V3_SEPARATOR + encodeValue(record, field, kind);
  return out;
}

// Fixed once, for the reason lib/keys/checksum.ts gives.
const charCodeAt = String.prototype.charCodeAt;

const SEPARATOR_CODE = 0x1f;
const QUOTE = 34;
const OPEN_BRACKET = 91;
const MINUS = 45;
/** ±8.64e15, the range of a `Date`: 16 digits, exact in a double. */
const MAX_MS = 8_640_000_000_000_000;

/**
 * Reads an encoding-3 record value by value. `at` is where the next value starts and
 * `end` where it ends (its separator, or the text's end); past the last value both are
 * beyond the text, and an absent value reads as `null`.
 */
class Reader {
  at: number;
  end: number;

  constructor(readonly stored: string) {
    this.at = 2;
    this.end = this.find(2);
  }

  private find(from: number): number {
    if (from > this.stored.length) return from;
    const next = this.stored.indexOf(V3_SEPARATOR, from);
    return next < 0 ? this.stored.length : next;
  }

  /** Moves to the next value. */
  next(): void {
    this.at = this.end + 1;
    this.end = this.find(this.at);
  }

  absentOrEmpty(): boolean {
    return this.at >= this.end;
  }

  text(): string {
    if (this.at > this.stored.length) throw new UnreadableRecordError();
    const at = this.at;
    const end = this.end;
    if (at < end && charCodeAt.call(this.stored, at) === QUOTE) {
      const value = JSON.parse(this.stored.slice(at, end)) as unknown;
      if (typeof value !== 'string') throw new UnreadableRecordError();
      return value;
    }
    return this.stored.slice(at, end);
  }

  optionalText(): string | null {
    return this.at >= this.end ? null : this.text();
  }

  integer(): number {
    let at = this.at;
    const end = this.end;
    const text = this.stored;
    const negative = at < end && charCodeAt.call(text, at) === MINUS;
    if (negative) at++;
    // At most 16 digits: every integer up to 2^53 is exact, and a Date ends at 8.64e15.
    if (at >= end || end - at > 16) throw new UnreadableRecordError();
    let n = 0;
    for (let i = at; i < end; i++) {
      const digit = charCodeAt.call(text, i) - 48;
      if (digit < 0 || digit > 9) throw new UnreadableRecordError();
      n = n * 10 + digit;
    }
    return negative ? -n : n;
  }

  date(): Date {
    const ms = this.integer();
    if (ms > MAX_MS || ms < -MAX_MS) throw new UnreadableRecordError();
    return new Date(ms);
  }

  optionalDate(): Date | null {
    return this.at >= this.end ? null : this.date();
  }

  list(): string[] {
    const at = this.at;
    const end = this.end;
    if (at >= end) {
      if (at > this.stored.length) throw new UnreadableRecordError();
      return [];
    }
    if (charCodeAt.call(this.stored, at) !== OPEN_BRACKET) return this.stored.slice(at, end).split(',');
    const items = JSON.parse(this.stored.slice(at, end)) as unknown;
    if (!Array.isArray(items) || !items.every((item) => typeof item === 'string')) throw new UnreadableRecordError();
    return items as string[];
  }

  json(): unknown {
    if (this.at >= this.end) throw new UnreadableRecordError();
    // Metadata is most often empty: no parser for it.
    if (this.end - this.at === 2 && charCodeAt.call(this.stored, this.at) === 123 && charCodeAt.call(this.stored, this.at + 1) === 125) return {};
    return JSON.parse(this.stored.slice(this.at, this.end));
  }

  optionalJson(): unknown {
    return this.at >= this.end ? null : JSON.parse(this.stored.slice(this.at, this.end));
  }
}

/**
 * A record from encoding-3 text (which starts with `V3_HEAD`). Any value out of shape
 * throws `UnreadableRecordError`; the caller turns it into `BackendUnavailableError`.
 */
export function decodeV3(stored: string): ApiKey {
  const r = new Reader(stored);
  const id = r.text();
  r.next();
  const keyHash = r.text();
  r.next();
  const ownerId = r.text();
  r.next();
  const scopes = r.list();
  r.next();
  const expiresAt = r.optionalDate();
  r.next();
  const revokedAt = r.optionalDate();
  r.next();
  const lastUsedAt = r.optionalDate();
  r.next();
  const environment = r.optionalText();
  r.next();
  const policy = r.optionalJson() as ApiKey['policy'];
  r.next();
  const version = r.integer();
  if (version < 1) throw new UnreadableRecordError();
  r.next();
  const name = r.text();
  r.next();
  const hint = r.text();
  r.next();
  const metadata = r.json() as ApiKey['metadata'];
  r.next();
  const createdAt = r.date();
  r.next();
  const updatedAt = r.date();
  r.next();
  const rotatedFromId = r.optionalText();
  r.next();
  const issuedById = r.optionalText();
  // The owner entry is the scripts' bookkeeping: skipped, never sliced.
  r.next();
  r.next();
  const disabledAt = r.optionalDate();
  // The same fields in the same order as the other decoders: one object shape for all.
  return {
    id,
    name,
    ownerId,
    keyHash,
    hint,
    scopes,
    metadata,
    createdAt,
    updatedAt,
    expiresAt,
    revokedAt,
    lastUsedAt,
    rotatedFromId,
    environment,
    policy,
    version,
    issuedById,
    disabledAt,
  };
}
