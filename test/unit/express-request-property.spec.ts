import { describe, expect, it } from 'vitest';
import { declareExpressRequestProperty } from '../../lib/express-request-property.js';

describe('declareExpressRequestProperty', () => {
  it('declares apiKey once on app.request: stores go to each request, not to the prototype', () => {
    const proto = {};
    expect(declareExpressRequestProperty({ request: proto })).toBe(true);
    expect(declareExpressRequestProperty({ request: proto })).toBe(true);
    const a = Object.create(proto) as { apiKey?: unknown };
    const b = Object.create(proto) as { apiKey?: unknown };
    a.apiKey = { id: 'a' };
    expect(a.apiKey).toEqual({ id: 'a' });
    expect(b.apiKey).toBeUndefined();
    expect(Object.keys(a)).toEqual([]);
    expect(Object.getOwnPropertyNames(a)).toEqual([]);
  });

  it('leaves a prototype that has an apiKey of its own alone', () => {
    const getter = () => 'the app’s own';
    const proto = Object.defineProperty({}, 'apiKey', { get: getter, configurable: true });
    expect(declareExpressRequestProperty({ request: proto })).toBe(false);
    expect(Object.getOwnPropertyDescriptor(proto, 'apiKey')!.get).toBe(getter);
  });

  it('does nothing for something that is not an Express app', () => {
    expect(declareExpressRequestProperty(undefined)).toBe(false);
    expect(declareExpressRequestProperty(null)).toBe(false);
    expect(declareExpressRequestProperty({})).toBe(false);
    expect(declareExpressRequestProperty({ request: 'nope' })).toBe(false);
  });
});
