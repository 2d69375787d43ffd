import { crc32 } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { KeyFormat } from 'nestjs-api-auth';
import { BASE62_ALPHABET, CHECKSUM_LENGTH, SECRET_LENGTH, checksum } from '../../lib/keys/index.js';
import { encodeBase62Fixed } from '../../lib/keys/base62.js';
import { CRC32_START, crc32Final, crc32Update } from '../../lib/keys/checksum.js';

const format = new KeyFormat('test_');
const BASE62 = /^[0-9A-Za-z]+$/;

/** Base62 decoding written independently of the library, to check its encoder. */
function decodeBase62(text: string): number {
  let value = 0;
  for (const char of text) value = value * 62 + BASE62_ALPHABET.indexOf(char);
  return value;
}

const replaceAt = (s: string, i: number, c: string) => s.slice(0, i) + c + s.slice(i + 1);

describe('KeyFormat.generate', () => {
  it('mints <prefix><43 base62 chars of secret><6 base62 chars of checksum>', () => {
    for (let i = 0; i < 200; i++) {
      const key = format.generate();
      expect(key).toHaveLength('test_'.length + 43 + 6);
      expect(key).toHaveLength(format.length);
      expect(key.startsWith('test_')).toBe(true);
      const body = key.slice(0, -CHECKSUM_LENGTH);
      expect(key.slice('test_'.length)).toMatch(BASE62);
      expect(decodeBase62(key.slice(-CHECKSUM_LENGTH))).toBe(crc32(body));
      expect(format.parse(key)).toEqual({ ok: true, key });
    }
  });

  it('carries at least 256 bits of secret', () => {
    expect(SECRET_LENGTH).toBe(43);
    expect(SECRET_LENGTH * Math.log2(62)).toBeGreaterThanOrEqual(256);
  });

  it('never repeats a key or a secret over 10,000 keys', () => {
    const keys = Array.from({ length: 10_000 }, () => format.generate());
    expect(new Set(keys).size).toBe(10_000);
    expect(new Set(keys.map((k) => k.slice(5, 5 + SECRET_LENGTH))).size).toBe(10_000);
  });

  it('draws every base62 character about equally often (no modulo bias)', () => {
    const counts = new Map<string, number>();
    const n = 6_000;
    for (let i = 0; i < n; i++) {
      for (const c of format.generate().slice(5, 5 + SECRET_LENGTH)) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    expect(counts.size).toBe(62);
    const expected = (n * SECRET_LENGTH) / 62; // ~4,161; sd ~64
    for (const count of counts.values()) {
      // +-10% is ~6.5 sd: a random failure will not happen; a 256 % 62 bias (+25%) fails.
      expect(Math.abs(count - expected) / expected).toBeLessThan(0.1);
    }
  });

  it('keeps a hint of the prefix and checksum characters only, never secret characters', () => {
    const key = format.generate();
    expect(format.hint(key)).toBe(`test_…${key.slice(-4)}`);
    // The last four characters are all checksum, which is derivable from the key but reveals none of the secret.
    expect(CHECKSUM_LENGTH).toBeGreaterThanOrEqual(4);
  });
});

describe('KeyFormat prefix validation', () => {
  it.each([
    ['', 'empty'],
    ['has-dash', 'a dash'],
    ['with space', 'a space'],
    ['ünï_', 'non-ASCII'],
    ['x'.repeat(33), '33 characters'],
    ['sk.', 'a dot'],
  ])('rejects %j (%s) naming the option', (prefix) => {
    expect(() => new KeyFormat(prefix)).toThrow(/option "prefix" must be 1-32 characters of letters, digits and "_"/);
  });

  it.each([[undefined], [null], [42], [{}]])('rejects a non-string prefix %j', (prefix) => {
    expect(() => new KeyFormat(prefix as unknown as string)).toThrow(/option "prefix"/);
  });

  it.each([['a'], ['prod_'], ['A_1'], ['x'.repeat(32)], ['sk']])('accepts %j and round-trips its keys', (prefix) => {
    const f = new KeyFormat(prefix);
    const key = f.generate();
    expect(key.startsWith(prefix)).toBe(true);
    expect(f.parse(key).ok).toBe(true);
  });
});

describe('KeyFormat.parse on malformed input', () => {
  const key = format.generate();

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['an object', {}],
    ['an array holding a key', [key]],
    ['a Buffer of a key', Buffer.from(key)],
    ['a String object of a key', new String(key)],
    ['a symbol', Symbol('k')],
  ])('not_a_string for %s', (_label, input) => {
    expect(format.parse(input)).toEqual({ ok: false, reason: 'not_a_string' });
  });

  it('wrong_length for empty, truncated, extended, whitespace-padded and 10 kB strings', () => {
    for (const input of [
      '',
      ' ',
      key.slice(0, -1),
      key + 'a',
      ` ${key}`,
      `${key} `,
      `${key}\n`,
      'test_'.repeat(2_000),
      'a'.repeat(10_240),
      key.repeat(200),
    ]) {
      expect(format.parse(input), JSON.stringify(input.slice(0, 20))).toEqual({ ok: false, reason: 'wrong_length' });
    }
  });

  it('wrong_prefix for a key of another deployment and for blanks of the right length', () => {
    const other = new KeyFormat('live_').generate();
    expect(format.parse(other)).toEqual({ ok: false, reason: 'wrong_prefix' });
    expect(format.parse(' '.repeat(format.length))).toEqual({ ok: false, reason: 'wrong_prefix' });
    expect(format.parse('TEST_' + key.slice(5))).toEqual({ ok: false, reason: 'wrong_prefix' });
  });

  it('bad_alphabet for whitespace, punctuation and non-ASCII inside the key', () => {
    const at = 10;
    for (const c of [' ', '\t', '\n', '\0', '_', '-', '+', '/', '=', '.', 'é', 'а' /* Cyrillic */, '０' /* fullwidth */, '\u200b']) {
      expect(format.parse(replaceAt(key, at, c)), JSON.stringify(c)).toEqual({ ok: false, reason: 'bad_alphabet' });
    }
    // An astral character is two UTF-16 units: replace two characters to keep the length.
    const emoji = key.slice(0, at) + '😀' + key.slice(at + 2);
    expect(emoji).toHaveLength(format.length);
    expect(format.parse(emoji)).toEqual({ ok: false, reason: 'bad_alphabet' });
    // Non-ASCII in the checksum part too.
    expect(format.parse(replaceAt(key, format.length - 1, 'ß'))).toEqual({ ok: false, reason: 'bad_alphabet' });
  });

  it('bad_checksum for a well-formed string whose checksum does not match', () => {
    const body = key.slice(0, -CHECKSUM_LENGTH);
    expect(format.parse(body + '000000')).toEqual({ ok: false, reason: 'bad_checksum' });
    expect(format.parse('test_' + 'A'.repeat(49))).toEqual({ ok: false, reason: 'bad_checksum' });
  });

  it('does constant work for a huge input: the length is checked before anything is scanned', () => {
    // The right prefix and a bad character up front: a scan of any kind would answer
    // wrong_prefix or bad_alphabet, so only the length check can answer wrong_length.
    const huge = `${format.prefix}ß${'x'.repeat(10 * 1024 * 1024)}`;
    const startsWith = vi.spyOn(String.prototype, 'startsWith');
    try {
      expect(format.parse(huge)).toEqual({ ok: false, reason: 'wrong_length' });
      expect(format.matches(huge)).toBe(false);
      expect(startsWith).not.toHaveBeenCalled();
    } finally {
      startsWith.mockRestore();
    }
  });
});

describe('the checksum', () => {
  it("computes zlib's CRC32 in JavaScript, whole or fed in pieces", () => {
    // Every ASCII code, including ones no key may contain, and lengths 0-200.
    for (let n = 0; n < 2_000; n++) {
      const length = n % 201;
      let text = '';
      for (let i = 0; i < length; i++) text += String.fromCharCode(Math.floor(Math.random() * 128));
      expect(crc32Final(crc32Update(CRC32_START, text, 0, text.length))).toBe(crc32(text));
      const cut = Math.floor(Math.random() * (length + 1));
      expect(crc32Final(crc32Update(crc32Update(CRC32_START, text, 0, cut), text, cut, length))).toBe(crc32(text));
    }
  });


  it('is the fixed-width base62 CRC32 of prefix + secret (CRC32 check value 0xCBF43926)', () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
    const sum = checksum('123456789');
    expect(sum).toHaveLength(6);
    expect(decodeBase62(sum)).toBe(0xcbf43926);
    expect(checksum('')).toBe('000000');
  });

  it('encodes fixed-width base62 and refuses values that do not fit', () => {
    expect(encodeBase62Fixed(0, 6)).toBe('000000');
    expect(encodeBase62Fixed(61, 2)).toBe('0z');
    expect(encodeBase62Fixed(62, 2)).toBe('10');
    expect(encodeBase62Fixed(2 ** 32 - 1, 6)).toHaveLength(6);
    expect(decodeBase62(encodeBase62Fixed(2 ** 32 - 1, 6))).toBe(2 ** 32 - 1);
    expect(() => encodeBase62Fixed(62 ** 2, 2)).toThrow(RangeError);
  });

  it('catches every single-character change of a valid key, at every position, to every other base62 character', () => {
    let tried = 0;
    const missed: string[] = [];
    for (let k = 0; k < 25; k++) {
      const valid = format.generate();
      for (let i = 0; i < valid.length; i++) {
        for (const c of BASE62_ALPHABET) {
          if (c === valid[i]) continue;
          const result = format.parse(replaceAt(valid, i, c));
          // Inside secret or checksum, only the checksum can notice; in the prefix, the prefix check.
          const expected = i >= 'test_'.length ? 'bad_checksum' : 'wrong_prefix';
          if (result.ok || result.reason !== expected) missed.push(`key ${k}, position ${i} -> ${c}`);
          tried++;
        }
      }
    }
    expect(missed).toEqual([]);
    // 61 alternatives per position, 62 at the prefix's "_", which is not itself base62.
    expect(tried).toBe(25 * (format.length * 61 + 1));
  });

  it('catches every swap of two adjacent different characters', () => {
    for (let k = 0; k < 25; k++) {
      const valid = format.generate();
      for (let i = 'test_'.length; i < valid.length - 1; i++) {
        if (valid[i] === valid[i + 1]) continue;
        const swapped = valid.slice(0, i) + valid[i + 1] + valid[i] + valid.slice(i + 2);
        expect(format.parse(swapped)).toEqual({ ok: false, reason: 'bad_checksum' });
      }
    }
  });
});

describe('KeyFormat.matches', () => {
  it('agrees with parse().ok on keys and on every kind of rejection', () => {
    const format = new KeyFormat('m_');
    const key = format.generate();
    const samples: unknown[] = [key, 42, '', key.slice(1), `x${key.slice(1)}`, `${key.slice(0, -7)}!${key.slice(-6)}`];
    samples.push(key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A'));
    for (const sample of samples) expect(format.matches(sample)).toBe(format.parse(sample).ok);
    expect(samples.filter((s) => format.matches(s))).toEqual([key]);
  });
});

describe('KeyFormat.matches on every string representation', () => {
  // The check reads characters through String.prototype.charCodeAt fixed once, so the
  // optimizing compiler's code does not depend on how V8 holds the string; the answers
  // must not either, for keys and for near-misses, however the string was built.
  it('gives the same answer for flat, concatenated, sliced and internalized copies, cold and hot', () => {
    const format = new KeyFormat('rep_');
    const keys = Array.from({ length: 20 }, () => format.generate());
    const wrongChecksum = keys.map((k) => k.slice(0, -1) + (k.endsWith('A') ? 'B' : 'A'));
    const flat = (s: string) => Buffer.from(s, 'latin1').toString('latin1');
    const representations: Array<(s: string) => string> = [
      flat,
      (s) => s.slice(0, 9) + flat(s.slice(9)),
      (s) => flat(`padding:${s}`).slice(8),
      (s) => Object.keys({ [flat(s)]: 1 })[0]!,
    ];
    // Enough calls for V8 to optimize the check with all four shapes seen.
    for (let round = 0; round < 2_000; round++) {
      for (const represent of representations) {
        const i = round % keys.length;
        expect(format.matches(represent(keys[i]!))).toBe(true);
        expect(format.matches(represent(wrongChecksum[i]!))).toBe(false);
      }
    }
  });
});
