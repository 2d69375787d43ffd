import { describe, expect, it } from 'vitest';
import type { ApiKey } from 'nestjs-api-auth';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { decodeStoredRecord, encodeStoredRecord } from '../../lib/redis/redis-record.codec.js';
import { RECORD_LAYOUT } from '../../lib/redis/redis-record.layout.js';
import { DATE_SPLIT, V3_AT, V3_FIELDS, V3_LENGTH } from '../../lib/redis/redis-record.v3.js';

/** The array of an encoding-3 text, and the text with the array replaced. */
const arrayOf = (stored: string) => JSON.parse(stored.slice(stored.indexOf('['))) as unknown[];
const withArray = (stored: string, values: unknown[]) => `${stored.slice(0, stored.indexOf('['))}${JSON.stringify(values)}`;

const MAX_MS = 8_640_000_000_000_000;

/** Every optional field set, each to a value of its own. */
function fullRecord(overrides: Partial<ApiKey> = {}): ApiKey {
  return makeApiKeyRecord({
    name: 'café … 😀',
    scopes: ['read', 'write:things', 'reports:*'],
    metadata: { plan: 'pro', n: 0.1 + 0.2, big: 12345678901234567890, tiny: 5e-324, order: { z: 1, a: 2 } },
    createdAt: new Date(1_700_000_000_123),
    updatedAt: new Date(1_700_000_001_456),
    expiresAt: new Date(1_800_000_000_789),
    revokedAt: new Date(1_750_000_000_000),
    lastUsedAt: new Date(1_700_000_002_000),
    rotatedFromId: 'previous-id',
    environment: 'live',
    policy: { rateLimits: [{ name: 'burst', limit: 5, windowMs: 1_000 }] },
    version: 7,
    issuedById: 'issuer-id',
    disabledAt: new Date(1_760_000_000_000),
    ...overrides,
  });
}

const roundTrip = (record: ApiKey) => decodeStoredRecord(encodeStoredRecord(record, 3));

describe('record encoding 3', () => {
  it('is 3, the key hash, then a JSON array of every other field but the owner entry, ASCII', () => {
    const record = fullRecord();
    const stored = encodeStoredRecord(record, 3);
    expect(stored.startsWith(`3${record.keyHash}[`)).toBe(true);
    expect(stored).toMatch(/^[\x00-\x7f]*$/);
    // Six dates, two places each.
    expect(arrayOf(stored)).toHaveLength(RECORD_LAYOUT.length - 2 + 6);
    expect(V3_LENGTH).toBe(RECORD_LAYOUT.length - 2 + 6);
    expect(V3_FIELDS.map(([field]) => field)).toEqual(RECORD_LAYOUT.map(([field]) => field).filter((f) => f !== 'keyHash' && f !== 'ownerEntry'));
    const [hi, lo] = arrayOf(stored).slice(V3_AT.createdAt, V3_AT.createdAt + 2) as [number, number];
    expect([hi, lo]).toEqual([17_000, 123]);
    expect(hi * DATE_SPLIT + lo).toBe(record.createdAt.getTime());
    expect(arrayOf(stored).slice(V3_AT.expiresAt, V3_AT.expiresAt + 2)).toEqual([18_000, 789]);
  });

  it('looked up by hash: the record under that hash, holding the caller\'s string; null under another hash', () => {
    const record = fullRecord();
    const stored = encodeStoredRecord(record, 3);
    const expected = `${record.keyHash}`;
    const found = decodeStoredRecord(stored, expected)!;
    expect(found).toEqual(record);
    expect(found.keyHash).toBe(expected);
    expect(decodeStoredRecord(stored, record.keyHash.replace(/.$/, (c) => (c === '0' ? '1' : '0')))).toBeNull();
    expect(decodeStoredRecord(stored, record.keyHash.slice(1))).toBeNull();
    // Encodings 1 and 2 alike.
    expect(decodeStoredRecord(encodeStoredRecord(record, 2), 'f'.repeat(64))).toBeNull();
    expect(decodeStoredRecord(encodeStoredRecord(record, 1), 'f'.repeat(64))).toBeNull();
    expect(decodeStoredRecord(encodeStoredRecord(record, 2), record.keyHash)).toEqual(record);
  });

  it('keeps a key hash of another length', () => {
    for (const keyHash of ['abc', 'a'.repeat(128)]) {
      const record = fullRecord({ keyHash });
      expect(roundTrip(record)).toEqual(record);
      expect(decodeStoredRecord(encodeStoredRecord(record, 3), keyHash)).toEqual(record);
    }
    expect(() => encodeStoredRecord(fullRecord({ keyHash: 'a[b' }), 3)).toThrow(/keyHash/);
  });

  it('reads back every field kind, set and unset', () => {
    const full = fullRecord();
    expect(roundTrip(full)).toEqual(full);
    const bare = makeApiKeyRecord({ scopes: [], metadata: {} });
    expect(roundTrip(bare)).toEqual(bare);
  });

  it('reads back each optional field null and non-null on its own', () => {
    const optional = ['expiresAt', 'revokedAt', 'lastUsedAt', 'rotatedFromId', 'environment', 'policy', 'issuedById', 'disabledAt'] as const;
    const full = fullRecord();
    for (const field of optional) {
      const one = { ...full, [field]: null };
      expect(roundTrip(one)).toEqual(one);
      const only = { ...makeApiKeyRecord(), [field]: full[field] };
      expect(roundTrip(only)).toEqual(only);
    }
  });

  it('keeps text that is not plain ASCII, empty text, and text that looks like the encoding', () => {
    const texts = ['', '"quoted"', '"', 'ünïcødé ✓ 😀', 'tab\there', 'line\nbreak', '\\back\\slash', '[not a list]', '3', ' ', '/'];
    for (const text of texts) {
      const record = fullRecord({ name: text, ownerId: `o${text}`, hint: text, rotatedFromId: text, environment: text, issuedById: text, id: `id${text}` });
      expect(roundTrip(record)).toEqual(record);
    }
  });

  it('stores lone surrogates as U+FFFD, as encoding 2 does', () => {
    const record = fullRecord({ name: 'a\ud800b', ownerId: '\udc00', scopes: ['x\ud83d'] });
    expect(roundTrip(record)).toEqual({ ...record, name: 'a\ufffdb', ownerId: '\ufffd', scopes: ['x\ufffd'] });
  });

  it('keeps scopes of every shape: none, one, several, and items a joined list could not hold', () => {
    const lists = [[], [''], ['a'], ['a', 'b'], ['a,b'], ['[a'], ['a', '[b'], ['ü'], ['a', ''], ['"q"'], [' '], ['a b', 'c:*']];
    for (const scopes of lists) {
      const record = fullRecord({ scopes });
      expect(roundTrip(record)).toEqual(record);
    }
  });

  it('keeps every digit of dates at both ends of the Date range, and metadata numbers exactly as JSON has them', () => {
    const record = fullRecord({
      createdAt: new Date(-MAX_MS),
      updatedAt: new Date(MAX_MS),
      expiresAt: new Date(MAX_MS - 1),
      revokedAt: new Date(-MAX_MS + 1),
      lastUsedAt: new Date(0),
      disabledAt: new Date(-1),
      metadata: { f: 1.0000000000000002, e: 1e21, neg: -0.000001, int: 9007199254740993 },
    });
    const decoded = roundTrip(record)!;
    expect(decoded).toEqual(record);
    expect(JSON.stringify(decoded.metadata)).toBe(JSON.stringify(record.metadata));
  });

  it('splits every date into two small integers, exactly, on both sides of zero and of each 10^8', () => {
    const times = [-MAX_MS, -MAX_MS + 1, -100_000_001, -100_000_000, -99_999_999, -1, 0, 1, 99_999_999, 100_000_000, 100_000_001, MAX_MS - 1, MAX_MS];
    for (const ms of times) {
      const record = fullRecord({ createdAt: new Date(ms), lastUsedAt: new Date(ms) });
      const stored = encodeStoredRecord(record, 3);
      const [hi, lo] = arrayOf(stored).slice(V3_AT.createdAt, V3_AT.createdAt + 2) as [number, number];
      expect(Number.isSafeInteger(hi) && lo >= 0 && lo < DATE_SPLIT && Number.isInteger(lo), String(ms)).toBe(true);
      expect(Object.is(hi, -0)).toBe(false);
      expect(roundTrip(record)).toEqual(record);
    }
  });

  it('reads a record written before a field was appended (a shorter array) as null, and ignores values appended later', () => {
    const record = fullRecord({ disabledAt: null });
    const stored = encodeStoredRecord(record, 3);
    expect(decodeStoredRecord(withArray(stored, arrayOf(stored).slice(0, -1)))).toEqual(record);
    expect(decodeStoredRecord(withArray(stored, [...arrayOf(stored), 123, 'later']))).toEqual(record);
  });

  it('refuses a value out of shape, never answering a record', () => {
    const stored = encodeStoredRecord(fullRecord(), 3);
    const values = arrayOf(stored);
    const replace = (field: keyof typeof V3_AT, value: unknown) => withArray(stored, values.map((v, i) => (i === V3_AT[field] ? value : v)));
    const broken = [
      replace('createdAt', null),
      withArray(stored, values.map((v, i) => (i === V3_AT.createdAt + 1 ? null : v))),
      replace('createdAt', '1700000000000'),
      replace('expiresAt', 'soon'),
      replace('version', 0),
      replace('version', '1'),
      replace('scopes', 'read'),
      replace('metadata', null),
      replace('metadata', '{broken'),
      replace('id', null),
      replace('name', 5),
      withArray(stored, values.slice(0, V3_AT.createdAt)),
      `${stored.slice(0, stored.indexOf('['))}{}`,
      stored.slice(0, -1),
      `3${'a'.repeat(64)}`,
      '3',
      '3[]',
    ];
    for (const value of broken) expect(() => decodeStoredRecord(value), value).toThrow(/cannot read/);
  });
});
