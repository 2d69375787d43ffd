import { HttpException, Logger, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiKeyGuard, ApiKeyService, KeyFormat, MemoryBackend } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { redactedError, safeErrorMessage } from '../../lib/internal/safe-error-message.js';

const hash = createHash('sha256').update('k').digest('hex');

describe('redactedError', () => {
  it('keeps the class name, a redacted message and a string code, and drops the cause chain', () => {
    class ReplyError extends Error {
      override name = 'ReplyError';
      code = 'ECONNRESET';
    }
    const original = new ReplyError(`no reply for ${hash}`, { cause: new Error(`inner ${hash}`) });
    const copy = redactedError(original);
    expect(copy).not.toBe(original);
    expect(copy.name).toBe('ReplyError');
    expect(copy.message).toBe('no reply for [redacted]');
    expect((copy as Error & { code?: string }).code).toBe('ECONNRESET');
    expect(copy.cause).toBeUndefined();
    expect(String(copy.stack)).not.toContain(hash);
  });

  it('copes with what is not an Error', () => {
    expect(redactedError(`text ${hash}`)).toMatchObject({ name: 'Error', message: 'text [redacted]' });
    expect(redactedError(undefined).message).toBe('undefined');
    expect((redactedError({ code: 7 }) as Error & { code?: unknown }).code).toBeUndefined();
  });
});

describe('safeErrorMessage', () => {
  it('removes anything shaped like a key hash and bounds the text', () => {
    expect(safeErrorMessage(new Error(`duplicate key_hash=${hash}`))).toBe('duplicate key_hash=[redacted]');
    expect(safeErrorMessage(`x ${hash.toUpperCase()} y`)).toBe('x [redacted] y');
    expect(safeErrorMessage(new Error('z'.repeat(1000)))).toHaveLength(300);
    expect(safeErrorMessage(new Error('plain reason'))).toBe('plain reason');
  });

  it('removes base64 and base64url digests and plaintext keys too', () => {
    const digest = createHash('sha256').update('k');
    const b64url = digest.copy().digest('base64url');
    const b64 = digest.copy().digest('base64');
    const key = new KeyFormat('live_').generate();
    expect(safeErrorMessage(`WRONGTYPE at api-auth:cache:${b64url} here`)).toBe('WRONGTYPE at api-auth:cache:[redacted] here');
    expect(safeErrorMessage(`value ${b64} rejected`)).toBe('value [redacted] rejected');
    expect(safeErrorMessage(`bad input "${key}"`)).toBe('bad input "[redacted]"');
    for (let i = 0; i < 200; i++) {
      const random = createHash('sha256').update(String(i)).digest('base64url');
      expect(safeErrorMessage(`x ${random} y`)).not.toContain(random.slice(0, 20));
    }
  });

  it('keeps the ordinary text of driver errors', () => {
    for (const text of [
      'connect ECONNREFUSED 127.0.0.1:6379',
      'relation "api_keys" does not exist',
      'Connection terminated due to connection timeout',
      'ERR_MODULE_NOT_FOUND_WHILE_LOADING_THE_CONFIGURED_STORE_ADAPTER',
      'The API key backend did not answer within 5000 ms.',
    ]) {
      expect(safeErrorMessage(new Error(text))).toBe(text);
    }
  });
});

describe('the guard logs a failing backend without its hash', () => {
  afterEach(() => vi.restoreAllMocks());

  it('redacts a hash a custom backend put in its error message', async () => {
    class LeakyBackend extends MemoryBackend {
      override async getByHash(keyHash: string): Promise<never> {
        throw new Error(`lookup of ${keyHash} failed`);
      }
    }
    const options = resolveApiAuthOptions({ backend: new LeakyBackend(), prefix: 'leak_' });
    const guard = new ApiKeyGuard(new Reflector(), new ApiKeyService(options), options);
    const logged: string[] = [];
    vi.spyOn(Logger.prototype, 'error').mockImplementation((message: unknown) => void logged.push(String(message)));
    const key = new KeyFormat('leak_').generate();
    const request = { headers: { 'x-api-key': key } };
    const context = {
      getType: () => 'http',
      getClass: () => LeakyBackend,
      getHandler: () => LeakyBackend.prototype.getByHash,
      getArgByIndex: (index: number) => [request, { setHeader() {} }][index],
    } as unknown as ExecutionContext;
    const error = await Promise.resolve().then(() => guard.canActivate(context)).catch((e: unknown) => e);
    expect((error as HttpException).getStatus()).toBe(503);
    expect(logged.join('\n')).toContain('lookup of [redacted] failed');
    expect(logged.join('\n')).not.toMatch(/[0-9a-f]{64}/);
  });
});
