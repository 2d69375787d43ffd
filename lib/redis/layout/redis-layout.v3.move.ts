import { BackendUnavailableError, DuplicateApiKeyError } from '../../api-key.errors.js';
import { decodeRecord } from './redis-layout.js';
import { committedPointer, movingPointer, type RedisPointer } from './redis-layout.v3.pointer.js';
import { END_MOVE, FREEZE, PLACE } from './redis-layout.v3.scripts.js';
import type { V3Store } from './redis-layout.v3.store.js';

/** How a move ended: moved (and whether this call made the final switch), refused (hash taken), or no record to move. */
export type MoveOutcome = { moved: true; switched: boolean } | { moved: false; reason: 'keyHash' | 'gone' };

/**
 * Moves a record from one key hash to another (pepper rotation) across slots, in an
 * order where the record is verifiable under one hash or both at every instant, and
 * never stale under either:
 * 1. pointer `c:from` -> `m:from:to` (writes now finish the move before writing);
 * 2. freeze `from` (a writer that read the old pointer is sent to finish the move);
 * 3. place the copy under `to`; 4. drop `from`; 5. pointer -> `c:to`.
 * A crash leaves the pointer moving, and the next write (or replaceHash) finishes it.
 * Since no write reaches `to` before `from` is dropped, the two copies never differ.
 */
export class V3Move {
  constructor(private readonly store: V3Store) {}

  async replaceHash(id: string, fromHash: string, toHash: string): Promise<boolean> {
    const op = 'replaceHash';
    for (let attempt = 0; attempt < 3; attempt++) {
      const pointer = await this.store.pointer(op, id);
      if (!pointer) return false;
      if (pointer.state === 'moving') {
        const outcome = await this.finish(op, id, pointer);
        if (pointer.from === fromHash && pointer.to === toHash) return this.result(outcome);
        continue;
      }
      if (pointer.hash !== fromHash) return false;
      // The usual refusal costs one GET and writes nothing.
      const holder = decodeRecord(op, await this.store.read(op, ['GET', this.store.keys.record(toHash)]));
      if (holder && holder.id !== id) throw new DuplicateApiKeyError('keyHash');
      const moving = movingPointer(fromHash, toHash);
      if (!(await this.store.swapPointer(op, id, pointer.raw, moving))) continue;
      await this.store.step(op, 1);
      return this.result(await this.finish(op, id, { state: 'moving', from: fromHash, to: toHash, raw: moving }, pointer.raw));
    }
    throw new BackendUnavailableError('RedisBackend: replaceHash kept racing other writes of the key; try again.');
  }

  private result(outcome: MoveOutcome): boolean {
    if (!outcome.moved && outcome.reason === 'keyHash') throw new DuplicateApiKeyError('keyHash');
    return outcome.moved && outcome.switched;
  }

  /**
   * Steps 2-5 for a pointer found moving (by any writer). `restore` is what the pointer
   * goes back to when the move is refused or there is nothing to move: the value before
   * the move when this call started it, else `c:<from>`.
   */
  async finish(operation: string, id: string, pointer: RedisPointer & { state: 'moving' }, restore = committedPointer(pointer.from)): Promise<MoveOutcome> {
    const { from, to } = pointer;
    const keys = this.store.keys;
    // Steps count under replaceHash only for its own call; a writer finishing a move reports them apart.
    const label = operation === 'replaceHash' ? operation : `${operation}:move`;
    const frozen = await this.store.script<unknown>(operation, FREEZE, [keys.record(from), keys.moving(from)], [id, to]);
    if (frozen === 'busy') throw new BackendUnavailableError('RedisBackend: a record is frozen for a move its id pointer does not name.');
    await this.store.step(label, 2);
    if (Array.isArray(frozen)) {
      const [stored, expireAt] = frozen as [unknown, unknown];
      const placed = await this.store.script<unknown>(operation, PLACE, [keys.record(to)], [id, String(stored), to, String(expireAt)]);
      await this.store.step(label, 3);
      if (placed === 'keyHash') {
        // Refused: unfreeze first, then the pointer, so a crash between leaves it moving and the next writer retries (and is refused) again.
        await this.store.script(operation, END_MOVE, [keys.record(from), keys.moving(from)], [id, to, 'thaw']);
        await this.store.swapPointer(operation, id, pointer.raw, restore);
        return { moved: false, reason: 'keyHash' };
      }
      await this.store.script(operation, END_MOVE, [keys.record(from), keys.moving(from)], [id, to, 'drop']);
      await this.store.step(label, 4);
    } else if (!(await this.store.recordAt(operation, id, to))) {
      // Neither copy: the record expired (or a delete of it is finishing). Nothing to move.
      await this.store.swapPointer(operation, id, pointer.raw, restore);
      return { moved: false, reason: 'gone' };
    }
    const switched = await this.store.swapPointer(operation, id, pointer.raw, committedPointer(to));
    await this.store.step(label, 5);
    return { moved: true, switched };
  }
}
