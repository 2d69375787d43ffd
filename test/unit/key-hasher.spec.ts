import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyFormat, KeyHasher } from 'nestjs-api-auth';
import { sameKeyHash } from '../../lib/keys/key-hasher.js';

const key = new KeyFormat('test_').generate();
const PEPPER = 'a-pepper-of-32-characters-length';

describe('KeyHasher without a pepper', () => {
  const hasher = new KeyHasher();

  it('is SHA-256 as lowercase hex (FIPS 180-2 vector for "abc")', () => {
    expect(hasher.peppered).toBe(false);
    expect(hasher.hash('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('is deterministic and differs between keys', () => {
    expect(hasher.hash(key)).toBe(hasher.hash(key));
    expect(hasher.hash(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(hasher.hash(key)).not.toBe(hasher.hash(new KeyFormat('test_').generate()));
    expect(hasher.hash(key)).not.toContain(key);
  });

  it.each([[undefined], [null]])('treats %s as "no pepper"', (pepper) => {
    expect(new KeyHasher(pepper).hash(key)).toBe(createHash('sha256').update(key).digest('hex'));
  });
});

describe('KeyHasher with a pepper', () => {
  it('is HMAC-SHA256 (RFC 4231 test case 2 with a 20-byte key)', () => {
    const hasher = new KeyHasher(Buffer.alloc(20, 0x0b));
    expect(hasher.peppered).toBe(true);
    expect(hasher.hash('Hi There')).toBe('b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7');
  });

  it('differs from plain SHA-256 and between peppers, and is deterministic', () => {
    const peppered = new KeyHasher(PEPPER);
    expect(peppered.hash(key)).toBe(createHmac('sha256', PEPPER).update(key).digest('hex'));
    expect(peppered.hash(key)).toBe(new KeyHasher(PEPPER).hash(key));
    expect(peppered.hash(key)).not.toBe(new KeyHasher().hash(key));
    expect(peppered.hash(key)).not.toBe(new KeyHasher(PEPPER + 'x').hash(key));
  });

  it('hashes the same for a string pepper and its UTF-8 bytes', () => {
    expect(new KeyHasher(PEPPER).hash(key)).toBe(new KeyHasher(Buffer.from(PEPPER, 'utf8')).hash(key));
  });

  it('does not keep a reference to a caller Buffer that is later overwritten', () => {
    const buffer = Buffer.from(PEPPER);
    const hasher = new KeyHasher(buffer);
    const before = hasher.hash(key);
    buffer.fill(0);
    expect(hasher.hash(key)).toBe(before);
  });

  it('rejects a pepper shorter than 16 bytes, naming the option', () => {
    expect(() => new KeyHasher('x'.repeat(15))).toThrow(/option "pepper" must be at least 16 bytes/);
    expect(() => new KeyHasher(Buffer.alloc(15))).toThrow(/option "pepper"/);
    expect(() => new KeyHasher(Buffer.alloc(0))).toThrow(/option "pepper"/);
    expect(new KeyHasher('x'.repeat(16)).peppered).toBe(true);
    // Length is counted in bytes: eight two-byte characters are enough.
    expect(new KeyHasher('é'.repeat(8)).peppered).toBe(true);
  });

  it('rejects an empty pepper instead of silently storing unpeppered hashes', () => {
    // `pepper: process.env.PEPPER` with the variable set but empty is a misconfiguration, not "no pepper".
    expect(() => new KeyHasher('')).toThrow(/option "pepper"/);
  });
});

describe('sameKeyHash', () => {
  const hash = new KeyHasher().hash(key);
  const flip = (c: string) => (c === '0' ? '1' : '0');

  it("matches an equal hash, whatever the string's representation", () => {
    expect(sameKeyHash(hash, hash)).toBe(true);
    // A copy built by concatenation and one sliced out of a longer string.
    expect(sameKeyHash(hash.slice(0, 30) + hash.slice(30), hash)).toBe(true);
    expect(sameKeyHash(`x${hash}`.slice(1), hash)).toBe(true);
  });

  it('refuses a hash that differs anywhere, or in length', () => {
    for (const i of [0, 1, 31, 62, 63]) {
      expect(sameKeyHash(hash.slice(0, i) + flip(hash[i]!) + hash.slice(i + 1), hash)).toBe(false);
    }
    expect(sameKeyHash(hash.slice(0, -1), hash)).toBe(false);
    expect(sameKeyHash(`${hash}0`, hash)).toBe(false);
    expect(sameKeyHash('', hash)).toBe(false);
    expect(sameKeyHash(hash.toUpperCase(), hash)).toBe(false);
  });

  it('refuses characters that agree only in their low byte (no narrowing to bytes)', () => {
    // 'a' is 0x61 and U+0161 shares that low byte: a comparison of UTF-16 code units
    // narrowed to 8 bits would call these equal.
    expect(sameKeyHash(String.fromCharCode(0x161) + hash.slice(1), 'a' + hash.slice(1))).toBe(false);
  });

  it.each([[undefined], [null], [42], [Buffer.from('ab')], [{ length: 64 }]])('refuses a stored hash that is not a string: %s', (stored) => {
    expect(sameKeyHash(stored, hash)).toBe(false);
  });
});
