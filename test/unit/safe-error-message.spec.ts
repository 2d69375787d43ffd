import { HttpException, Logger, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiKeyGuard, ApiKeyService, KeyFormat, MemoryBackend } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from '../../lib/api-auth.options.js';
import { safeErrorMessage } from '../../lib/safe-error-message.js';

const hash = createHash('sha256').update('k').digest('hex');

describe('safeErrorMessage', () => {
  it('removes anything shaped like a key hash and bounds the text', () => {
    expect(safeErrorMessage(new Error(`duplicate key_hash=${hash}`))).toBe('duplicate key_hash=[redacted]');
    expect(safeErrorMessage(`x ${hash.toUpperCase()} y`)).toBe('x [redacted] y');
    expect(safeErrorMessage(new Error('z'.repeat(1000)))).toHaveLength(300);
    expect(safeErrorMessage(new Error('plain reason'))).toBe('plain reason');
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
