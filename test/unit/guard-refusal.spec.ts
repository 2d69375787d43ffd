import { ConsoleLogger, HttpException, Logger, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiKeyGuard, ApiKeyService, KeyFormat, MemoryBackend, type ApiKeyFailure } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { CapturingLogger } from '../fixtures/log-capture.js';

// How a refusal leaves canActivate: a rejected promise by default (no `throw`, which
// costs V8 a stack walk per refused request), a synchronous throw when a subclass
// overrides throwFailure, and a rejected promise carrying a subclass's own exception
// when it overrides failureException.

class Route {
  handler(): void {}
}

function httpContext(headers: Record<string, string>) {
  const request = { headers };
  const response = { headers: {} as Record<string, string>, setHeader(n: string, v: string) { this.headers[n] = v; } };
  const context = {
    getType: () => 'http',
    getClass: () => Route,
    getHandler: () => Route.prototype.handler,
    getArgs: () => [request, response],
    getArgByIndex: (i: number) => [request, response][i],
  } as unknown as ExecutionContext;
  return { context, response };
}

class TransportError extends Error {
  constructor(readonly body: Record<string, unknown>) {
    super('refused');
  }
}

function build<G extends ApiKeyGuard>(Guard: new (r: Reflector, s: ApiKeyService, o: ReturnType<typeof resolveApiAuthOptions>) => G) {
  const options = resolveApiAuthOptions({ backend: new MemoryBackend(), prefix: 'gr_' });
  return new Guard(new Reflector(), new ApiKeyService(options), options);
}

const wellFormedUnknown = new KeyFormat('gr_').generate();

describe('ApiKeyGuard refusals', () => {
  it.each([
    ['missing', {}, 'missing_api_key'],
    ['malformed', { 'x-api-key': 'gr_nope' }, 'invalid_api_key'],
    ['unknown', { 'x-api-key': wellFormedUnknown }, 'invalid_api_key'],
  ])('a %s key: canActivate returns a rejected promise (it does not throw), with the 401 and its header', async (_name, headers, code) => {
    const guard = build(ApiKeyGuard);
    const { context, response } = httpContext(headers);
    let outcome: unknown;
    expect(() => (outcome = guard.canActivate(context))).not.toThrow();
    expect(outcome).toBeInstanceOf(Promise);
    const error = await (outcome as Promise<boolean>).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpException);
    expect((error as HttpException).getStatus()).toBe(401);
    expect((error as HttpException).getResponse()).toMatchObject({ statusCode: 401, code });
    expect(response.headers['WWW-Authenticate']).toMatch(/^ApiKey realm="api"/);
  });

  // Promise.reject() would make a promise that rejects before Nest awaits it: Node books
  // it as a possible unhandled rejection (and reports it if the await comes a turn
  // late), which cost about 1.3 µs per refused request in the benchmark.
  it('a refusal is not reported as an unhandled rejection, even when awaited a macrotask later', async () => {
    const guard = build(ApiKeyGuard);
    const { context } = httpContext({ 'x-api-key': 'gr_nope' });
    const unhandled: unknown[] = [];
    const listener = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      const outcome = guard.canActivate(context) as Promise<boolean>;
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
      const error = await outcome.catch((e: unknown) => e);
      expect((error as HttpException).getStatus()).toBe(401);
    } finally {
      process.off('unhandledRejection', listener);
    }
  });

  it('a subclass overriding throwFailure is called, and its throw is what the caller sees', () => {
    class ThrowingGuard extends ApiKeyGuard {
      protected override throwFailure(_context: ExecutionContext, failure: ApiKeyFailure): never {
        throw new TransportError(this.failureBody(failure));
      }
    }
    const guard = build(ThrowingGuard);
    const { context } = httpContext({ 'x-api-key': 'gr_nope' });
    expect(() => guard.canActivate(context)).toThrow(TransportError);
  });

  it('a subclass overriding failureException gets its exception back as the rejection', async () => {
    class OwnExceptionGuard extends ApiKeyGuard {
      protected override failureException(_context: ExecutionContext, failure: ApiKeyFailure): unknown {
        return new TransportError(this.failureBody(failure));
      }
    }
    const guard = build(OwnExceptionGuard);
    const { context } = httpContext({ 'x-api-key': 'gr_nope' });
    const error = await Promise.resolve(guard.canActivate(context)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).body).toMatchObject({ statusCode: 401, code: 'invalid_api_key' });
  });

  it('a valid key is still answered synchronously with true', async () => {
    const guard = build(ApiKeyGuard);
    const service = (guard as unknown as { apiKeys: ApiKeyService }).apiKeys;
    const { key } = await service.issue({ ownerId: 'o', name: 'n' });
    const { context } = httpContext({ 'x-api-key': key });
    expect(guard.canActivate(context)).toBe(true);
  });
});

describe('ApiKeyGuard 503', () => {
  // Each 503 here logs the outage as an error, on purpose: kept and asserted, not printed.
  let logs: CapturingLogger;
  beforeEach(() => {
    logs = new CapturingLogger();
    Logger.overrideLogger(logs);
  });
  afterEach(() => {
    Logger.overrideLogger(new ConsoleLogger());
  });

  class LeakyBackend extends MemoryBackend {
    override async getByHash(keyHash: string): Promise<never> {
      const driver = new Error(`driver failed on ${keyHash} for gr_${'A'.repeat(20)}b${'Z'.repeat(28)}9`);
      throw Object.assign(new TypeError(`lookup of ${keyHash} failed`), { cause: driver });
    }
  }

  it("carries a redacted cause: the error's class and message without hashes, keys or the chain", async () => {
    const options = resolveApiAuthOptions({ backend: new LeakyBackend(), prefix: 'gr_' });
    const guard = new ApiKeyGuard(new Reflector(), new ApiKeyService(options), options);
    const { context, response } = httpContext({ 'x-api-key': wellFormedUnknown });
    const error = (await (guard.canActivate(context) as Promise<boolean>).catch((e: unknown) => e)) as HttpException;
    expect(error.getStatus()).toBe(503);
    expect(error.getResponse()).toMatchObject({ statusCode: 503, code: 'backend_unavailable' });
    expect(response.headers['Retry-After']).toBe('1');
    const cause = error.cause as Error;
    expect(cause).toBeInstanceOf(Error);
    expect(cause.name).toBe('TypeError');
    expect(cause.message).toBe('lookup of [redacted] failed');
    expect(cause.cause).toBeUndefined();
    expect(JSON.stringify({ message: cause.message, stack: cause.stack })).not.toMatch(/[0-9a-f]{64}/);
    expect(logs.lines).toEqual([expect.stringMatching(/^\[error\] The API key backend is unavailable; answering 503: lookup of \[redacted\] failed /)]);
  });

  it('hands a subclass the backend error itself in failure.error', async () => {
    let seen: unknown;
    class Inspecting extends ApiKeyGuard {
      protected override failureException(context: ExecutionContext, failure: ApiKeyFailure) {
        if (failure.status === 503) seen = failure.error;
        return super.failureException(context, failure);
      }
    }
    const options = resolveApiAuthOptions({ backend: new LeakyBackend(), prefix: 'gr_' });
    const guard = new Inspecting(new Reflector(), new ApiKeyService(options), options);
    await (guard.canActivate(httpContext({ 'x-api-key': wellFormedUnknown }).context) as Promise<boolean>).catch(() => undefined);
    expect(seen).toBeInstanceOf(TypeError);
    expect((seen as Error).cause).toBeInstanceOf(Error);
    expect(logs.lines.join('\n')).not.toMatch(/[0-9a-f]{64}/);
  });
});
