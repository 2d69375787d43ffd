import { HttpException } from '@nestjs/common';

/**
 * The `HttpException` a refusal is reported with, assembled without V8's `Error`
 * constructor (costly on a flood of garbage keys): `HttpException.prototype`, Nest's own
 * properties in order and a frameless `stack`. The first refusal is compared with what
 * Nest builds, and any difference switches every refusal to the real constructor. Each
 * refusal has its own object and body (a filter adding to one leaks nothing); it is not
 * a native error to `util.types.isNativeError`. Why: bench/README.md, "Refusals".
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
