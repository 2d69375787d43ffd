import { HttpException, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import fc from 'fast-check';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiKeyGuard, ApiKeyService, MemoryBackend, type ExtractedKey } from 'nestjs-api-auth';
import { type ResolvedApiAuthOptions } from '../../lib/api-auth.options.js';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { CountingBackend } from '../fixtures/counting.backend.js';

// The guard's extraction and decision under arbitrary headers, without HTTP: every
// input either authenticates the one issued key or is refused with a 401, and only
// well-formed values cost a lookup.

/** Exposes the protected extraction step. */
class ProbeGuard extends ApiKeyGuard {
  extract(request: Record<string, unknown>): ExtractedKey {
    return this.extractKey(request);
  }
}

class Route {
  handler(): void {}
}

function httpContext(request: Record<string, unknown>): ExecutionContext {
  const response = { headers: {} as Record<string, string>, setHeader(n: string, v: string) { this.headers[n] = v; } };
  return {
    getType: () => 'http',
    getClass: () => Route,
    getHandler: () => Route.prototype.handler,
    getArgs: () => [request, response],
    getArgByIndex: (i: number) => [request, response][i],
    switchToHttp: () => ({ getRequest: () => request, getResponse: () => response, getNext: () => undefined }),
    switchToRpc: () => { throw new Error('not rpc'); },
    switchToWs: () => { throw new Error('not ws'); },
  } as unknown as ExecutionContext;
}

const PREFIX = 'fg_';
let options: ResolvedApiAuthOptions;
let backend: CountingBackend;
let service: ApiKeyService;
let guard: ProbeGuard;
let key: string;
let otherKey: string;

beforeAll(async () => {
  backend = new CountingBackend(new MemoryBackend());
  options = resolveApiAuthOptions({ prefix: PREFIX, backend, trackUsage: false, queryParam: 'api_key' });
  service = new ApiKeyService(options);
  guard = new ProbeGuard(new Reflector(), service, options);
  ({ key } = await service.issue({ ownerId: 'fuzz-owner', name: 'fuzz' }));
  ({ key: otherKey } = await service.issue({ ownerId: 'fuzz-other', name: 'fuzz 2' }));
});

beforeEach(() => backend.reset());

// Values a header or query parameter can hold, biased towards the interesting ones:
// real keys, near-keys, padding, schemes, huge strings and raw UTF-16.
const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: 'binary-ascii', maxLength: 80 }),
  fc.constantFrom('', ' ', '\t', '\0', ', ', 'Bearer', 'bearer ', 'null', 'undefined'),
  fc.constant(null).map(() => key),
  fc.constant(null).map(() => otherKey),
  fc.constant(null).map(() => service.format.generate()),
  fc.tuple(fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })).map(([n, c]) => {
    const at = n % key.length;
    return key.slice(0, at) + c + key.slice(at + 1);
  }),
  fc.tuple(fc.string({ unit: 'binary-ascii', maxLength: 4 }), fc.string({ unit: 'binary-ascii', maxLength: 4 })).map(
    ([a, b]) => a + key + b,
  ),
  fc.integer({ min: 1, max: 20_000 }).map((n) => 'k'.repeat(n)),
);
const scheme = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'bEaReR', 'Basic', 'Token', 'ApiKey', '', 'Bearer:', 'Bearer\t');
const authorization = fc.oneof(
  text,
  fc.tuple(scheme, fc.constantFrom(' ', '  ', '', '\t'), text).map(([s, sep, t]) => s + sep + t),
);
/** Anything a careless transport might put in a headers object. */
const junk = fc.anything({ maxDepth: 2, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true });
const headerValue = <T>(value: fc.Arbitrary<T>) =>
  fc.oneof(
    { weight: 6, arbitrary: value },
    { weight: 2, arbitrary: fc.array(value, { maxLength: 3 }) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: junk },
  );
const headers = fc.record(
  {
    'x-api-key': headerValue(text),
    authorization: headerValue(authorization),
    other: headerValue(text),
  },
  { requiredKeys: [] },
);
const request = fc.record(
  {
    headers: fc.oneof({ weight: 8, arbitrary: headers }, { weight: 1, arbitrary: junk }),
    query: fc.oneof(fc.record({ api_key: headerValue(text) }, { requiredKeys: [] }), junk),
    rawHeaders: fc.oneof(fc.array(fc.oneof(fc.constantFrom('Authorization', 'authorization', 'X-API-Key'), text), { maxLength: 8 }), junk),
  },
  { requiredKeys: [] },
);

describe('ApiKeyGuard extraction under fuzzing', () => {
  it('never throws, and a found key is a non-empty trimmed string taken from the request', () => {
    fc.assert(
      fc.property(request, (req) => {
        const result = guard.extract(req as Record<string, unknown>);
        expect(['key', 'missing', 'malformed']).toContain(result.kind);
        if (result.kind === 'key') {
          expect(typeof result.value).toBe('string');
          expect(result.value.length).toBeGreaterThan(0);
          expect(result.value).toBe(result.value.trim());
          const h = (req.headers ?? {}) as Record<string, unknown>;
          const sources = [h['x-api-key'], h.authorization, (req.query as Record<string, unknown> | undefined)?.api_key]
            .flat()
            .filter((v): v is string => typeof v === 'string');
          expect(sources.some((s) => s.includes(result.value))).toBe(true);
        }
      }),
      { numRuns: 5_000 },
    );
  });

  it('never accepts two different values, however they are sent', () => {
    fc.assert(
      fc.property(text, text, fc.constantFrom('x+bearer', 'x+query', 'bearer+query', 'x twice'), (a, b, how) => {
        fc.pre(a.trim() !== '' && b.trim() !== '' && a.trim() !== b.trim());
        const req =
          how === 'x+bearer'
            ? { headers: { 'x-api-key': a, authorization: `Bearer ${b}` } }
            : how === 'x+query'
              ? { headers: { 'x-api-key': a }, query: { api_key: b } }
              : how === 'bearer+query'
                ? { headers: { authorization: `Bearer ${a}` }, query: { api_key: b } }
                : { headers: { 'x-api-key': [a, b] } };
        expect(guard.extract(req).kind).toBe('malformed');
      }),
      { numRuns: 3_000 },
    );
  });
});

describe('ApiKeyGuard.canActivate under fuzzing', () => {
  it('lets in only the issued keys, refuses everything else with 401, and looks up only well-formed values', async () => {
    const seen = { allowed: 0, lookups: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(request, async (req) => {
        backend.reset();
        const carrier = structuredCloneSafe(req);
        const extracted = guard.extract(carrier);
        let outcome: 'allowed' | 'denied' | number = 'denied';
        let code: unknown;
        try {
          if (await guard.canActivate(httpContext(carrier))) outcome = 'allowed';
        } catch (error) {
          // Anything but an HttpException would surface as a 500.
          expect(error).toBeInstanceOf(HttpException);
          outcome = (error as HttpException).getStatus();
          code = ((error as HttpException).getResponse() as { code?: unknown }).code;
        }
        const value = extracted.kind === 'key' ? extracted.value : undefined;
        if (value === key || value === otherKey) {
          expect(outcome).toBe('allowed');
          seen.allowed++;
        } else {
          seen.refused++;
          expect(outcome).toBe(401);
          expect(code).toBe(extracted.kind === 'missing' ? 'missing_api_key' : 'invalid_api_key');
        }
        const wellFormed = value !== undefined && service.format.parse(value).ok;
        // One lookup: a getByHash, or a synchronous peek when the backend offers one.
        expect(backend.lookups).toBe(wellFormed ? 1 : 0);
        expect(backend.totalCalls).toBe(backend.lookups);
        if (wellFormed) seen.lookups++;
      }),
      { numRuns: 4_000 },
    );
    // The generators must reach every branch, or the property proves little.
    expect(seen.allowed).toBeGreaterThan(0);
    expect(seen.refused).toBeGreaterThan(seen.allowed);
    expect(seen.lookups).toBeGreaterThan(seen.allowed);
  });
});

/** A copy the guard may write to (it attaches the key), tolerant of values structuredClone refuses. */
function structuredCloneSafe(value: unknown): Record<string, unknown> {
  try {
    return structuredClone(value) as Record<string, unknown>;
  } catch {
    return { ...(value as Record<string, unknown>) };
  }
}

describe('a refusal is cheap', () => {
  it('throws its 401 without capturing a stack trace, and leaves Error.stackTraceLimit as it was', async () => {
    const before = Error.stackTraceLimit;
    const error = await Promise.resolve()
      .then(() => guard.canActivate(httpContext({ headers: { 'x-api-key': 'garbage' } })))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpException);
    expect((error as HttpException).getStatus()).toBe(401);
    expect((error as HttpException).getResponse()).toMatchObject({ code: 'invalid_api_key' });
    expect((error as Error).stack ?? '').not.toMatch(/\n\s+at /);
    expect(Error.stackTraceLimit).toBe(before);
  });
});
