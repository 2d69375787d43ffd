import { HttpException, IntrinsicException } from '@nestjs/common';
import { types } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { refusalException, resetRefusalShapeCheck } from '../../lib/transport/refusal-exception.js';

// Refusals are built without the Error constructor (see refusal-exception.ts). They must
// be indistinguishable from Nest's own HttpException to everything Nest and apps use,
// each with its own body, and fall back to the real constructor should Nest change.

/** Nest's own exception, for comparison. */
const nests = (body: Record<string, unknown>, status: number, cause?: unknown) => new HttpException(body, status, { cause });

const body = () => ({ statusCode: 401, error: 'Unauthorized', code: 'invalid_api_key', message: 'The API key is not valid.' });

afterEach(() => resetRefusalShapeCheck());

describe('refusalException', () => {
  it.each([
    ['without a cause', undefined],
    ['with a cause (a 503)', new Error('redacted copy')],
  ])('is what Nest builds, %s: class, status, body, message, name, cause, stack, keys', (_name, cause) => {
    const ours = refusalException(body(), 503, cause);
    const real = nests(body(), 503, cause);
    expect(ours).toBeInstanceOf(HttpException);
    expect(ours).toBeInstanceOf(IntrinsicException);
    expect(ours).toBeInstanceOf(Error);
    expect(ours.getStatus()).toBe(503);
    expect(ours.getResponse()).toEqual(real.getResponse());
    expect(ours.message).toBe('The API key is not valid.');
    expect(ours.name).toBe(real.name);
    expect(ours.cause).toBe(cause);
    // What V8 writes with no frames: the first line of the real one.
    expect(ours.stack).toBe(real.stack!.split('\n')[0]);
    expect(Object.keys(ours)).toEqual(Object.keys(real));
    expect(JSON.stringify(ours)).toBe(JSON.stringify(real));
    expect(Object.getOwnPropertyDescriptor(ours, 'stack')).toMatchObject({ enumerable: false, writable: true });
  });

  it('gives every refusal its own object and its own body: a filter adding to one changes no other', () => {
    const first = refusalException(body(), 401, undefined);
    const second = refusalException(body(), 401, undefined);
    expect(first).not.toBe(second);
    (first.getResponse() as Record<string, unknown>).requestId = 'r-1';
    (first as unknown as Record<string, unknown>).extra = true;
    expect(second.getResponse()).not.toHaveProperty('requestId');
    expect(second).not.toHaveProperty('extra');
    expect(refusalException(body(), 401, undefined).getResponse()).toEqual(body());
  });

  it('is not a native error (the one difference from the constructor), while the fallback is', () => {
    expect(types.isNativeError(refusalException(body(), 401, undefined))).toBe(false);
    expect(types.isNativeError(nests(body(), 401))).toBe(true);
  });

  it("falls back to Nest's constructor when Nest's exception no longer has the shape it copies", () => {
    // A Nest release whose constructor sets something more (here: an errorCode) than the
    // copy does. The comparison at first use notices, and every refusal is then real.
    const original = Object.getOwnPropertyDescriptor(HttpException.prototype, 'initErrorCode')!;
    Object.defineProperty(HttpException.prototype, 'initErrorCode', {
      ...original,
      value(this: { errorCode?: string }) {
        this.errorCode = 'E_NEW';
      },
    });
    try {
      resetRefusalShapeCheck();
      const refused = refusalException(body(), 401, undefined);
      expect(types.isNativeError(refused)).toBe(true);
      expect(refused.errorCode).toBe('E_NEW');
      expect(refused.getResponse()).toEqual(body());
      expect(refused.stack).toBe('HttpException: The API key is not valid.');
    } finally {
      Object.defineProperty(HttpException.prototype, 'initErrorCode', original);
    }
    resetRefusalShapeCheck();
    expect(types.isNativeError(refusalException(body(), 401, undefined))).toBe(false);
  });
});
