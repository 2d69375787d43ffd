import { HttpException } from '@nestjs/common';

/**
 * The `HttpException` a refusal is reported with, built without running the `Error`
 * constructor.
 *
 * Why: a refusal is an answer, not a bug, and a flood of garbage keys is exactly when
 * its cost matters. Even without a stack trace (`Error.stackTraceLimit = 0`), V8's
 * `Error` constructor runs in C++: about 300 ns per refusal against 13 for this
 * (Fastify malformed-key flood: 98,600 to 97,600 instructions per request). A
 * prebuilt exception shared by every refusal would be
 * cheaper still, but an app's exception filter that adds to the body (a request id,
 * say) would leak that into other requests' responses; each refusal here has its own
 * object and its own body.
 *
 * What it is: an object with `HttpException.prototype` and the own properties Nest's
 * constructor gives one, in the same order, plus the `stack` V8 writes with no frames
 * (`HttpException: <message>`). Nest's exception handling and `@Catch(HttpException)`
 * filters go by `instanceof`, `getResponse()` and `getStatus()`, which it satisfies.
 * It is not a native error to `util.types.isNativeError`.
 *
 * Those own properties are private to Nest. So at first use the result is compared
 * with what Nest's own constructor builds (status, response, message, name, cause,
 * errorCode, stack and the enumerable keys in order); should a Nest release change
 * them, every refusal is built with the real constructor instead, as before.
 */
export function refusalException(body: Record<string, unknown>, status: number, cause: unknown): HttpException {
  return (shapeMatches ??= sameAsNest()) ? assemble(body, status, cause) : construct(body, status, cause);
}

let shapeMatches: boolean | undefined;

/** Nest's own constructor, without a stack trace. */
function construct(body: Record<string, unknown>, status: number, cause: unknown): HttpException {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new HttpException(body, status, { cause });
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** The same object as `construct`'s, property by property, without the `Error` constructor. */
function assemble(body: Record<string, unknown>, status: number, cause: unknown): HttpException {
  const message = typeof body.message === 'string' ? body.message : 'Http Exception';
  const exception = Object.create(HttpException.prototype) as Record<string, unknown>;
  Object.defineProperty(exception, 'stack', { value: `HttpException: ${message}`, writable: true, configurable: true });
  exception.response = body;
  exception.status = status;
  exception.options = { cause };
  // HttpException keeps a cause only when it is truthy; the field exists either way.
  exception.cause = cause ? cause : undefined;
  exception.errorCode = undefined;
  exception.message = message;
  exception.name = 'HttpException';
  return exception as unknown as HttpException;
}

/** Whether `assemble` builds what this version of Nest's constructor builds. */
function sameAsNest(): boolean {
  try {
    for (const cause of [undefined, new Error('cause')]) {
      const body = { statusCode: 401, message: 'probe' };
      const real = construct(body, 401, cause);
      const ours = assemble(body, 401, cause);
      const same =
        ours instanceof HttpException &&
        ours.getStatus() === real.getStatus() &&
        ours.getResponse() === real.getResponse() &&
        ours.message === real.message &&
        ours.name === real.name &&
        ours.cause === real.cause &&
        ours.errorCode === real.errorCode &&
        ours.stack === real.stack &&
        Object.keys(ours).join() === Object.keys(real).join();
      if (!same) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** For tests: forget the comparison, so the next refusal makes it again. */
export function resetRefusalShapeCheck(): void {
  shapeMatches = undefined;
}
