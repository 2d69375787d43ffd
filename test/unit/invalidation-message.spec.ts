import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type ApiKeyInvalidation } from 'nestjs-api-auth';
import { decodeInvalidation, encodeInvalidation, INVALIDATION_TAG_COUNT, invalidationTag } from 'nestjs-api-auth/backend';

const sha256 = (value: string | Buffer) => createHash('sha256').update(value).digest('hex');
const randomHash = () => sha256(randomBytes(32));
const DROP_ALL = { all: true };

describe('invalidationTag', () => {
  it('is a 12-bit integer, the same for the same hash on every call', () => {
    const hash = randomHash();
    const tag = invalidationTag(hash);
    expect(Number.isInteger(tag)).toBe(true);
    expect(tag).toBeGreaterThanOrEqual(0);
    expect(tag).toBeLessThan(INVALIDATION_TAG_COUNT);
    expect(INVALIDATION_TAG_COUNT).toBe(4096);
    expect(invalidationTag(hash)).toBe(tag);
  });

  it('spreads hashes over all 4,096 tags, about evenly', () => {
    const counts = new Array<number>(INVALIDATION_TAG_COUNT).fill(0);
    for (let i = 0; i < 100 * INVALIDATION_TAG_COUNT; i++) counts[invalidationTag(sha256(String(i)))]!++;
    // 100 expected per tag; a uniform spread stays within 50-160 with overwhelming probability.
    expect(Math.min(...counts)).toBeGreaterThan(50);
    expect(Math.max(...counts)).toBeLessThan(160);
  });

  it('is not a slice of the hash, nor of the digest that names the Redis cache entries', () => {
    const hashes = Array.from({ length: 2_000 }, randomHash);
    const leadingBits = (hex: string) => Number.parseInt(hex.slice(0, 3), 16);
    const redisCacheId = (hash: string) =>
      createHash('sha256').update('nestjs-api-auth/redis-cache\0').update(hash).digest();
    const matches = (f: (hash: string) => number) => hashes.filter((h) => invalidationTag(h) === f(h)).length;
    // A coincidence rate of 1 in 4,096 gives about 0.5 of 2,000; a slice would give 2,000.
    expect(matches(leadingBits)).toBeLessThan(10);
    expect(matches((h) => leadingBits(h.slice(-3)))).toBeLessThan(10);
    expect(matches((h) => (redisCacheId(h)[0]! << 4) | (redisCacheId(h)[1]! >> 4))).toBeLessThan(10);
  });
});

describe('the invalidation wire format', () => {
  it('round-trips ids, tags, all and origin, as version 2 with short field names', () => {
    const message: ApiKeyInvalidation = { ids: ['a', 'b'], tags: [0, 4095], all: false, origin: 'me' };
    const payload = encodeInvalidation(message);
    expect(JSON.parse(payload)).toEqual({ v: 2, o: 'me', i: ['a', 'b'], t: [0, 4095] });
    expect(decodeInvalidation(payload)).toEqual(message);
    expect(decodeInvalidation(encodeInvalidation({ all: true }))).toEqual({ ids: [], tags: [], all: true, origin: undefined });
    expect(JSON.parse(encodeInvalidation({}))).toEqual({ v: 2 });
  });

  it('writes only its own fields: whatever else the object holds never reaches the wire', () => {
    const secret = randomHash();
    const payload = encodeInvalidation({ ids: ['a'], keyHash: secret, extra: { secret } } as ApiKeyInvalidation);
    expect(payload).not.toContain(secret);
    expect(JSON.parse(payload)).toEqual({ v: 2, i: ['a'] });
  });

  it('refuses to encode key hashes, or anything that is not an invalidation, with a clear error', () => {
    const hash = randomHash();
    expect(() => encodeInvalidation({ ids: ['a'], hashes: [hash] } as ApiKeyInvalidation)).toThrow(
      /never by hash; send `tags: hashes.map\(invalidationTag\)`/,
    );
    const cases: Array<[unknown, RegExp]> = [
      [null, /must be an object/],
      ['{"v":2}', /must be an object/],
      [{ ids: 'a' }, /"ids" must be an array of at most 10000 strings/],
      [{ ids: [1] }, /"ids"/],
      [{ tags: [4096] }, /"tags" must be an array of at most 10000 tags \(integers 0-4095/],
      [{ tags: [-1] }, /"tags"/],
      [{ tags: [1.5] }, /"tags"/],
      [{ tags: ['12'] }, /"tags"/],
      [{ tags: new Array(10_001).fill(1) }, /"tags"/],
      [{ all: 1 }, /"all" must be a boolean/],
      [{ origin: 7 }, /"origin" must be a string/],
    ];
    for (const [bad, error] of cases) expect(() => encodeInvalidation(bad as ApiKeyInvalidation), JSON.stringify(bad)?.slice(0, 40)).toThrow(error);
  });

  it('decodes anything it cannot read as "drop everything"', () => {
    const unreadable = [
      '',
      'not json',
      '{"v":2,"i":["a"]', // truncated
      'null',
      '42',
      '"text"',
      '[1,2]',
      '{}', // no version
      '{"v":3,"i":["a"]}', // a future version
      '{"v":"2","i":["a"]}',
      '{"v":2,"i":"a"}',
      '{"v":2,"i":[1]}',
      '{"v":2,"t":[4096]}',
      '{"v":2,"t":[-1]}',
      '{"v":2,"t":[1.5]}',
      '{"v":2,"t":["1"]}',
      '{"v":2,"t":{"0":1}}',
      '{"v":2,"a":"yes"}',
      JSON.stringify({ v: 2, i: new Array(10_001).fill('x') }),
    ];
    for (const payload of unreadable) expect(decodeInvalidation(payload), payload.slice(0, 40)).toEqual(DROP_ALL);
  });

  it('ignores what it does not know in a message it can read, and a non-string origin', () => {
    expect(decodeInvalidation('{"v":2,"i":["a"],"o":5,"x":"future"}')).toEqual({ ids: ['a'], tags: [], all: false, origin: undefined });
  });

  it('reads version 1 (ids and key hashes) from an instance not yet upgraded, keeping tags and dropping the hashes', () => {
    const [h1, h2] = [randomHash(), randomHash()];
    const decoded = decodeInvalidation(JSON.stringify({ v: 1, o: 'old', i: ['a'], h: [h1, h2] }));
    expect(decoded).toEqual({ ids: ['a'], tags: [invalidationTag(h1), invalidationTag(h2)], all: false, origin: 'old' });
    expect(JSON.stringify(decoded)).not.toContain(h1);
    expect(decodeInvalidation('{"v":1,"i":["a"]}')).toEqual({ ids: ['a'], tags: [], all: false, origin: undefined });
    expect(decodeInvalidation('{"v":1,"a":true}')).toEqual({ ids: [], tags: [], all: true, origin: undefined });
    // Version 1 had no tags: a "t" in it is not read as one.
    expect(decodeInvalidation('{"v":1,"t":[7]}')).toEqual({ ids: [], tags: [], all: false, origin: undefined });
    for (const bad of ['{"v":1,"h":"abc"}', '{"v":1,"h":[1]}', JSON.stringify({ v: 1, h: ['x'.repeat(257)] })]) {
      expect(decodeInvalidation(bad), bad.slice(0, 40)).toEqual(DROP_ALL);
    }
  });
});
