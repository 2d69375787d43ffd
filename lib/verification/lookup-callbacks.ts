import type { ApiKey, ApiKeyView } from '../api-key.interface.js';
import type { ApiKeyBackend } from '../backends/backend.interface.js';

/**
 * The method a backend may have to answer a lookup by hash through callbacks instead of
 * a promise of its own: `backend[LOOK_UP_BY_HASH](keyHash, onRecord, onError)`, the
 * same answer as `getByHash`: `onRecord` gets `null` or a record whose `keyHash` the
 * backend has itself compared with `keyHash` (so the verifier does not compare it
 * again), `onError` why it could not answer. With a second argument, `onRecord` gets a
 * record the backend shares between lookups (its decode memo): the record and that view
 * are frozen, the record is only read, and the view is what the request gets, as for an
 * L1 hit. Without it the record is the caller's own, as from `getByHash`. The verifier settles its one promise from the callbacks, so a
 * verification costs no promise per layer. `RedisBackend` has it; a registered symbol,
 * so that a subclass or a wrapper can forward it.
 *
 * @internal Not part of the backend contract.
 */
export const LOOK_UP_BY_HASH = Symbol.for('nestjs-api-auth.lookUpByHash');

/** @internal See {@link LOOK_UP_BY_HASH}. */
export type LookUpByHash = (keyHash: string, onRecord: LookupAnswer, onError: (error: unknown) => void) => void;

/**
 * @internal The answer of a {@link LOOK_UP_BY_HASH} lookup: `null`, a record of the
 * caller's own, or a shared frozen record with its shared frozen view.
 */
export type LookupAnswer = (record: Readonly<ApiKey> | null, sharedView?: Readonly<ApiKeyView>) => void;

/** @internal A backend with {@link LOOK_UP_BY_HASH}. */
export interface CallbackLookup {
  [LOOK_UP_BY_HASH]: LookUpByHash;
}

/**
 * @internal Whether `backend` answers lookups through callbacks: it has the method, and
 * its `getByHash` is the one the method stands for (that of the object defining it). A
 * subclass, `Object.create` wrapper or proxy that puts its own `getByHash` in front
 * (to count, log or change lookups) gets it called, as before.
 */
export function hasCallbackLookup(backend: ApiKeyBackend): backend is ApiKeyBackend & CallbackLookup {
  let owner: object | null = backend;
  while (owner !== null && !Object.prototype.hasOwnProperty.call(owner, LOOK_UP_BY_HASH)) owner = Object.getPrototypeOf(owner) as object | null;
  return (
    owner !== null &&
    typeof (owner as Partial<CallbackLookup>)[LOOK_UP_BY_HASH] === 'function' &&
    (owner as Partial<ApiKeyBackend>).getByHash === backend.getByHash
  );
}
