import { describe, expect, it } from 'vitest';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { extractKey } from '../../lib/transport/key-extraction.js';

const extract = (authorization: string | undefined, schemes?: string[], extra: Record<string, string> = {}) => {
  const options = resolveApiAuthOptions(schemes === undefined ? {} : { schemes });
  const headers = { ...(authorization === undefined ? {} : { authorization }), ...extra };
  return extractKey({}, headers, undefined, options);
};

describe('the schemes option', () => {
  it('defaults to Bearer, and to none with bearer: false', () => {
    expect(resolveApiAuthOptions({}).schemes).toEqual(['bearer']);
    expect(resolveApiAuthOptions({ bearer: false })).toMatchObject({ schemes: [], bearer: false });
  });

  it('lower-cases the schemes and keeps bearer in step', () => {
    expect(resolveApiAuthOptions({ schemes: ['Bearer', 'Api-Key'] })).toMatchObject({ schemes: ['bearer', 'api-key'], bearer: true });
    expect(resolveApiAuthOptions({ schemes: ['Api-Key'] })).toMatchObject({ schemes: ['api-key'], bearer: false });
    expect(resolveApiAuthOptions({ schemes: [] })).toMatchObject({ schemes: [], bearer: false });
  });

  it('refuses at start-up what is not a list of distinct scheme names, and contradictions with bearer', () => {
    expect(() => resolveApiAuthOptions({ schemes: 'Bearer' as never })).toThrow(/"schemes" must be an array/);
    expect(() => resolveApiAuthOptions({ schemes: ['Api Key'] })).toThrow(/"schemes" must hold scheme names/);
    expect(() => resolveApiAuthOptions({ schemes: [''] })).toThrow(/"schemes"/);
    expect(() => resolveApiAuthOptions({ schemes: [42 as never] })).toThrow(/"schemes"/);
    expect(() => resolveApiAuthOptions({ schemes: ['Bearer', 'bearer'] })).toThrow(/each scheme once/);
    expect(() => resolveApiAuthOptions({ schemes: ['Api-Key'], bearer: false })).toThrow(/bearer: false/);
    expect(() => resolveApiAuthOptions({ schemes: ['Api-Key'], bearer: true })).toThrow(/must include "Bearer"/);
    expect(resolveApiAuthOptions({ schemes: [], bearer: false }).schemes).toEqual([]);
  });
});

describe('key extraction with schemes', () => {
  it('reads each listed scheme, case-insensitively, and no other', () => {
    const schemes = ['Bearer', 'Api-Key'];
    expect(extract('Bearer k1', schemes)).toEqual({ kind: 'key', value: 'k1' });
    expect(extract('Api-Key k2', schemes)).toEqual({ kind: 'key', value: 'k2' });
    expect(extract('api-key k3', schemes)).toEqual({ kind: 'key', value: 'k3' });
    expect(extract('API-KEY k4', schemes)).toEqual({ kind: 'key', value: 'k4' });
    expect(extract('Basic dXNlcg==', schemes)).toEqual({ kind: 'missing' });
    expect(extract('Api-Keys k5', schemes)).toEqual({ kind: 'missing' });
    expect(extract('Api k6', schemes)).toEqual({ kind: 'missing' });
  });

  it('leaves Api-Key alone by default, and Bearer too when it is not listed', () => {
    expect(extract('Api-Key k1')).toEqual({ kind: 'missing' });
    expect(extract('Bearer k1')).toEqual({ kind: 'key', value: 'k1' });
    expect(extract('Bearer k1', ['Api-Key'])).toEqual({ kind: 'missing' });
    expect(extract('Bearer k1', [])).toEqual({ kind: 'missing' });
  });

  it('refuses a listed scheme without a key, and one that disagrees with X-API-Key', () => {
    expect(extract('Api-Key', ['Api-Key'])).toEqual({ kind: 'malformed', reason: 'empty_bearer' });
    expect(extract('Api-Key    ', ['Api-Key'])).toEqual({ kind: 'malformed', reason: 'empty_bearer' });
    expect(extract('Api-Key k1', ['Api-Key'], { 'x-api-key': 'k2' })).toEqual({ kind: 'malformed', reason: 'conflicting' });
    expect(extract('Api-Key k1', ['Api-Key'], { 'x-api-key': 'k1' })).toEqual({ kind: 'key', value: 'k1' });
  });
});
