import { describe, expect, it } from 'vitest';
import { attachToExpressRequest, declareExpressRequestProperty, readRequestApiKey } from '../../lib/transport/express-request-property.js';

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

describe('attachToExpressRequest', () => {
  it('stores behind the accessor for a request whose prototype carries it, readable as request.apiKey', () => {
    const proto = {};
    declareExpressRequestProperty({ request: proto });
    const request = Object.create(proto) as { apiKey?: unknown };
    const other = Object.create(proto) as { apiKey?: unknown };
    expect(attachToExpressRequest(request, { id: 'a' })).toBe(true);
    expect(request.apiKey).toEqual({ id: 'a' });
    expect(other.apiKey).toBeUndefined();
    expect(Object.getOwnPropertyNames(request)).toEqual([]);
    // The app may overwrite it, through the accessor, as before.
    request.apiKey = { id: 'b' };
    expect(request.apiKey).toEqual({ id: 'b' });
  });

  it('stores nothing and says so for any other object: the caller assigns the property itself', () => {
    for (const request of [{}, Object.create(null) as object, Object.create(Object.create({}) as object) as object]) {
      expect(attachToExpressRequest(request, { id: 'a' })).toBe(false);
      expect((request as { apiKey?: unknown }).apiKey).toBeUndefined();
    }
    // A sub-app's request inherits the accessor one level further up: the plain store
    // still reaches it.
    const proto = {};
    declareExpressRequestProperty({ request: proto });
    const request = Object.create(Object.create(proto) as object) as { apiKey?: unknown };
    expect(attachToExpressRequest(request, { id: 'a' })).toBe(false);
    request.apiKey = { id: 'a' };
    expect(request.apiKey).toEqual({ id: 'a' });
    expect(Object.getOwnPropertyNames(request)).toEqual([]);
  });
});

describe('readRequestApiKey', () => {
  it('reads what was attached, through the map or the property, on any carrier', () => {
    const proto = {};
    declareExpressRequestProperty({ request: proto });
    const express = Object.create(proto) as Record<string, unknown>;
    expect(readRequestApiKey(express)).toBeUndefined();
    attachToExpressRequest(express, { id: 'a' });
    expect(readRequestApiKey(express)).toEqual({ id: 'a' });
    express.apiKey = { id: 'b' };
    expect(readRequestApiKey(express)).toEqual({ id: 'b' });

    const plain: Record<string, unknown> = { apiKey: { id: 'c' } };
    expect(readRequestApiKey(plain)).toEqual({ id: 'c' });
    expect(readRequestApiKey(Object.create(null) as Record<string, unknown>)).toBeUndefined();
  });
});
