import { BackendUnavailableError } from '../../api-key.errors.js';

/**
 * Layout 3's id pointer, `{i:<id>}`, in one of three states:
 * - `c:<hash>` committed: the id's record is (or was, until a delete finishes) under `hash`;
 * - `p:<ms>:<hash>` pending: claimed by a create at `ms` (the writer's clock) whose
 *   record may not be written yet. The record write is the commit: a pending pointer
 *   whose record exists is as good as a committed one, and the create settles it to
 *   `c:` afterwards. One older than the grace period with no record is a crashed
 *   create's, which a later create of the id may take over;
 * - `m:<length of from>:<from><to>` moving (replaceHash): the record is under `to`, or
 *   still under `from` until the move finishes. Every write finishes a move it meets first.
 */
export type RedisPointer =
  | { readonly state: 'committed'; readonly hash: string; readonly raw: string }
  | { readonly state: 'pending'; readonly hash: string; readonly since: number; readonly raw: string }
  | { readonly state: 'moving'; readonly from: string; readonly to: string; readonly raw: string };

export const committedPointer = (hash: string): string => `c:${hash}`;
export const pendingPointer = (hash: string, now: number): string => `p:${now}:${hash}`;
export const movingPointer = (from: string, to: string): string => `m:${from.length}:${from}${to}`;

/** The pointer a GET answered, or `null` for nil; a value no writer of layout 3 wrote fails closed. */
export function parsePointer(reply: unknown): RedisPointer | null {
  if (reply === null || reply === undefined) return null;
  const raw = String(reply);
  if (raw.startsWith('c:')) return { state: 'committed', hash: raw.slice(2), raw };
  const pending = /^p:(\d+):/.exec(raw);
  if (pending) return { state: 'pending', since: Number(pending[1]), hash: raw.slice(pending[0].length), raw };
  const moving = /^m:(\d+):/.exec(raw);
  if (moving) {
    const at = moving[0].length;
    const length = Number(moving[1]);
    if (at + length < raw.length) return { state: 'moving', from: raw.slice(at, at + length), to: raw.slice(at + length), raw };
  }
  throw new BackendUnavailableError('Redis holds an id pointer that this version of RedisBackend (layout 3) cannot read.');
}

/** The hashes the record may be under, the likelier first. */
export function hashesOf(pointer: RedisPointer): string[] {
  return pointer.state === 'moving' ? [pointer.to, pointer.from] : [pointer.hash];
}
