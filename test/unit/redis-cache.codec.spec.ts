import { describe, expect, it } from 'vitest';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { decodeRedisCacheEntry, encodeRedisCacheEntry, type RedisCacheEntry } from '../../lib/redis/redis-cache.codec.js';
import { redisCacheKeys, redisCacheKeysFromId } from '../../lib/redis/redis-cache.keys.js';

describe('Redis cache entry codec', () => {
  const record = makeApiKeyRecord({
    expiresAt: new Date(1_900_000_000_001),
    revokedAt: new Date(1_800_000_000_002),
    lastUsedAt: new Date(1_700_000_000_003),
    rotatedFromId: 'previous-id',
  });
  const entry: RedisCacheEntry = { generation: 'gen-1', filledAt: 1_000, validUntil: 2_000, record };

  it('round-trips a record, putting back the hash it was looked up by', () => {
    const decoded = decodeRedisCacheEntry(encodeRedisCacheEntry(entry), record.keyHash);
    expect(decoded).toEqual(entry);
    expect(decoded!.record!.createdAt).toBeInstanceOf(Date);
  });

  it('round-trips a negative entry and a null generation', () => {
    const negative: RedisCacheEntry = { generation: null, filledAt: 5, validUntil: 6, record: null };
    expect(decodeRedisCacheEntry(encodeRedisCacheEntry(negative), record.keyHash)).toEqual(negative);
  });

  it('writes ASCII only, escaping accented, CJK and astral text, and reads it back intact', () => {
    const text = 'café — 日本語 😀';
    const unicode = makeApiKeyRecord({ name: text, hint: 'sk_…abcd', metadata: { note: text }, scopes: [text] });
    const wire = encodeRedisCacheEntry({ ...entry, record: unicode });
    expect(wire).toMatch(/^[\x20-\x7e]*$/);
    expect(decodeRedisCacheEntry(wire, unicode.keyHash)!.record).toEqual(unicode);
    // An entry written before, with raw UTF-8 text, is still read.
    const raw = JSON.stringify(JSON.parse(wire));
    expect(raw).toContain(text);
    expect(decodeRedisCacheEntry(raw, unicode.keyHash)!.record).toEqual(unicode);
  });

  it('round-trips version and issuedById, and reads an entry written before them as version 1 without issuer', () => {
    const versioned = { ...record, version: 7, issuedById: 'issuer-id' };
    expect(decodeRedisCacheEntry(encodeRedisCacheEntry({ ...entry, record: versioned }), record.keyHash)!.record).toEqual(versioned);
    const wire = JSON.parse(encodeRedisCacheEntry({ ...entry, record: versioned })) as { r: Record<string, unknown> };
    delete wire.r.ve;
    delete wire.r.ib;
    expect(decodeRedisCacheEntry(JSON.stringify(wire), record.keyHash)!.record).toEqual({ ...versioned, version: 1, issuedById: null });
    for (const [field, value] of [['ve', 0], ['ve', '2'], ['ve', 1.5], ['ib', 3]] as const) {
      const bad = JSON.parse(encodeRedisCacheEntry(entry)) as { r: Record<string, unknown> };
      bad.r[field] = value;
      expect(decodeRedisCacheEntry(JSON.stringify(bad), record.keyHash), `${field}: ${String(value)}`).toBeUndefined();
    }
  });

  it('never writes the key hash', () => {
    expect(encodeRedisCacheEntry(entry)).not.toContain(record.keyHash);
  });

  it('reads anything it did not write as undefined (a miss), never as a record', () => {
    const valid = JSON.parse(encodeRedisCacheEntry(entry)) as Record<string, any>;
    const broken: unknown[] = [
      undefined,
      null,
      42,
      'not json',
      '"a string"',
      'null',
      JSON.stringify({ ...valid, g: 7 }),
      JSON.stringify({ ...valid, f: '1000' }),
      JSON.stringify({ ...valid, x: 1.5 }),
      JSON.stringify({ ...valid, r: 'record' }),
      JSON.stringify({ ...valid, r: { ...valid.r, s: 'read' } }),
      JSON.stringify({ ...valid, r: { ...valid.r, s: [1] } }),
      JSON.stringify({ ...valid, r: { ...valid.r, m: [] } }),
      JSON.stringify({ ...valid, r: { ...valid.r, c: null } }),
      JSON.stringify({ ...valid, r: { ...valid.r, v: 'yesterday' } }),
      JSON.stringify({ ...valid, r: { ...valid.r, p: undefined } }),
      JSON.stringify({ ...valid, r: { ...valid.r, i: undefined } }),
    ];
    for (const raw of broken) expect(decodeRedisCacheEntry(raw, record.keyHash), String(raw)).toBeUndefined();
  });
});

describe('Redis cache key names', () => {
  const hash = 'a'.repeat(64);

  it('are namespaced, versioned, share a cluster hash tag and never contain the key hash', () => {
    const keys = redisCacheKeys('api-auth', hash);
    expect(keys.entry).toBe(`api-auth:v1:{${keys.id}}:r`);
    expect(keys.generation).toBe(`api-auth:v1:{${keys.id}}:g`);
    expect(keys.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(`${keys.entry}${keys.generation}`).not.toContain(hash);
  });

  it('are stable for a hash, distinct across hashes, and rebuildable from the id', () => {
    const keys = redisCacheKeys('ns', hash);
    expect(redisCacheKeys('ns', hash)).toEqual(keys);
    expect(redisCacheKeys('ns', 'b'.repeat(64)).id).not.toBe(keys.id);
    expect(redisCacheKeysFromId('ns', keys.id)).toEqual(keys);
  });
});
