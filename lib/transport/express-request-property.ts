import { API_KEY_REQUEST_PROPERTY } from '../api-auth.constants.js';

/** Verified keys of in-flight Express requests; an entry goes when its request does. */
const attached = new WeakMap<object, unknown>();

/** Request prototypes carrying the accessor (one per Express app). */
const accessorPrototypes = new WeakSet<object>();

/**
 * Declares `request.apiKey` once on an Express app's request prototype
 * (`app.request`, the object Express itself tells apps to extend), as an accessor over
 * a `WeakMap`.
 *
 * Why: an Express request already carries about 28 own properties, and giving each one
 * an `apiKey` of its own moves it to a new hidden class as it passes the guard, which
 * cost more than the rest of the key check (bench/README.md). Through the accessor the guard's plain
 * `request.apiKey = view` changes no request's shape, and reading `request.apiKey`
 * works as before. Fastify requests carry a handful of properties and showed no such
 * cost, so they are left alone.
 *
 * Left alone as well: an app whose request prototype already has an `apiKey` of its
 * own. Returns whether the accessor is (now) in place.
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
 * prototype carries the accessor; `false` (nothing stored) otherwise.
 *
 * Why: Express gives every request its app's prototype with `Object.setPrototypeOf`,
 * which leaves V8 unable to share hidden classes between requests (each property
 * Express adds afterwards makes a new one). So every property store or load on an
 * Express request misses V8's inline caches and walks the prototype chain in the
 * runtime; a store that ends in the accessor also calls the setter from C++. Reading
 * the prototype and writing the `WeakMap` costs none of that.
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
