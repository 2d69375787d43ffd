import { API_KEY_REQUEST_PROPERTY } from '../api-auth.constants.js';

/** Verified keys of in-flight Express requests; an entry goes when its request does. */
const attached = new WeakMap<object, unknown>();

/** Request prototypes carrying the accessor (one per Express app). */
const accessorPrototypes = new WeakSet<object>();

/**
 * Declares `request.apiKey` once on an Express app's request prototype (`app.request`)
 * as an accessor over a `WeakMap`, so attaching the key changes no request's hidden
 * class (docs/internals.md#requestapikey-on-express-express-request-propertyts). An app
 * whose prototype already has an `apiKey` is left alone. Returns whether the accessor is
 * (now) in place.
 */
export function declareExpressRequestProperty(app: unknown): boolean {
  const proto = (app as { request?: unknown } | null)?.request;
  if (proto === null || typeof proto !== 'object') return false;
  const existing = Object.getOwnPropertyDescriptor(proto, API_KEY_REQUEST_PROPERTY);
  if (existing !== undefined) return existing.get === readAttached;
  Object.defineProperty(proto, API_KEY_REQUEST_PROPERTY, {
    configurable: true,
    enumerable: false,
    get: readAttached,
    set: writeAttached,
  });
  accessorPrototypes.add(proto);
  return true;
}

/**
 * Stores `apiKey` as `request.apiKey` without a property store when the request's
 * prototype carries the accessor; `false` (nothing stored) otherwise. Every property
 * store on an Express request misses V8's inline caches; the `WeakMap` write does not.
 */
export function attachToExpressRequest(request: object, apiKey: unknown): boolean {
  if (!carriesAccessor(request)) return false;
  attached.set(request, apiKey);
  return true;
}

function readAttached(this: object): unknown {
  return attached.get(this);
}

function writeAttached(this: object, value: unknown): void {
  attached.set(this, value);
}

/**
 * `request.apiKey`, read straight from the `WeakMap` when the request's prototype
 * carries the accessor (for the reason given at {@link attachToExpressRequest}).
 */
export function readRequestApiKey(request: Record<string, unknown>): unknown {
  return carriesAccessor(request) ? attached.get(request) : request[API_KEY_REQUEST_PROPERTY];
}

/** Whether the request's own prototype is one `declareExpressRequestProperty` extended. */
function carriesAccessor(request: object): boolean {
  return accessorPrototypes.has(Object.getPrototypeOf(request) as object);
}
