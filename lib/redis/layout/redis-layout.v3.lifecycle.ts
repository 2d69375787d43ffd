import type { ApiKey } from '../../api-key.interface.js';
import type { PurgeOptions } from '../../backends/backend.interface.js';
import { decodeRecord } from './redis-layout.js';
import type { V3Lists } from './redis-layout.v3.lists.js';
import type { V3Move } from './redis-layout.v3.move.js';
import { DELETE_RECORD } from './redis-layout.v3.scripts.js';
import type { V3Store } from './redis-layout.v3.store.js';

/** What purge made of one candidate: deleted it, left the range (filed anew, or gone), or stays in it (a write in flight). */
type Candidate = { deleted: Pick<ApiKey, 'id' | 'keyHash'> } | 'left' | 'stays';

/**
 * Layout 3's purge. The purge index (`{expiring}`, `{revoked}`: ids by ms) holds a
 * lower bound of each record's time (writes file it before their commit, exactly after
 * it), so a range query finds every record due; each candidate is then decided by its
 * record, in one script on the record's slot that deletes only if the record itself is
 * due (the commit), and cleaned up after it as a delete is. Not one atomic batch as in
 * layout 2: racing purges still count each record once (one of them deletes it).
 */
export class V3Lifecycle {
  constructor(
    private readonly store: V3Store,
    private readonly move: V3Move,
    private readonly lists: V3Lists,
  ) {}

  async purge(options: PurgeOptions): Promise<number> {
    const deleted: Array<Pick<ApiKey, 'id' | 'keyHash'>> = [];
    let examined = 0;
    const criteria = [
      ['expiresAt', this.store.keys.expiring(), options.expiredBefore],
      ['revokedAt', this.store.keys.revoked(), options.revokedBefore],
    ] as const;
    for (const [field, index, before] of criteria) {
      if (before === undefined) continue;
      let skip = 0;
      while (deleted.length < options.limit && examined < 8 * options.limit) {
        const want = options.limit - deleted.length;
        const ids = (await this.store.read<unknown[]>('purge', [
          'ZRANGEBYSCORE',
          index,
          '-inf',
          `(${before.getTime()}`,
          'LIMIT',
          String(skip),
          String(want),
        ])).map(String);
        if (ids.length === 0) break;
        examined += ids.length;
        for (const outcome of await Promise.all(ids.map((id) => this.candidate(id, field, before.getTime())))) {
          if (outcome === 'stays') skip++;
          else if (outcome !== 'left') deleted.push(outcome.deleted);
        }
        if (ids.length < want) break;
      }
    }
    if (deleted.length > 0) options.onDeleted?.(deleted.slice(0, options.limit));
    return Math.min(deleted.length, options.limit);
  }

  private async candidate(id: string, field: 'expiresAt' | 'revokedAt', before: number): Promise<Candidate> {
    const op = 'purge';
    const { store } = this;
    for (let attempt = 0; attempt < 3; attempt++) {
      const pointer = await store.pointer(op, id);
      if (!pointer) {
        await store.dropLifecycle(op, id);
        return 'left';
      }
      if (pointer.state === 'moving') {
        await this.move.finish(op, id, pointer);
        continue;
      }
      const keys = [store.keys.record(pointer.hash), store.keys.moving(pointer.hash)];
      const reply = (await store.script<unknown>(op, DELETE_RECORD, keys, [id, field, String(before)])) as unknown[] | null;
      if (reply?.[0] === 'moved') continue;
      if (reply?.[0] === 'deleted') {
        const record = decodeRecord(op, reply[1]) as ApiKey;
        await store.forget(op, record, pointer.raw);
        return { deleted: { id, keyHash: record.keyHash } };
      }
      if (reply?.[0] === 'kept') {
        // Not due: the index held a lower bound. File it exactly, which takes it out of the range.
        const record = decodeRecord(op, reply[1]) as ApiKey;
        const redisExpires = record.expiresAt !== null && store.ctx.options.expireRecords;
        await store.fileLifecycle(op, record, redisExpires);
        return 'left';
      }
      if (store.inFlight(pointer)) return 'stays';
      await Promise.all([store.swapPointer(op, id, pointer.raw, ''), store.dropLifecycle(op, id)]);
      return 'left';
    }
    return 'stays';
  }

  /**
   * Files every record in the purge index, walking the index across owners (every
   * record has its entry there before it commits): for stores whose purge index was
   * lost or never written. Idempotent. Resolves to the number of records read.
   */
  async rebuildPurgeIndex(): Promise<number> {
    const { store } = this;
    const pageSize = store.ctx.options.pageSize;
    let bound = '-';
    let indexed = 0;
    for (;;) {
      const page = await this.lists.entryPage('rebuildPurgeIndex', store.keys.all(), 'asc', bound, pageSize);
      const records = await this.lists.records('rebuildPurgeIndex', page, () => true);
      await Promise.all(
        records.map(async (record) => {
          const at = Number(await store.read('rebuildPurgeIndex', ['PEXPIRETIME', store.keys.record(record.keyHash)]));
          await store.fileLifecycle('rebuildPurgeIndex', record, at > 0);
        }),
      );
      indexed += records.length;
      if (page.members.length < pageSize) return indexed;
      bound = `(${page.members[page.members.length - 1]}`;
    }
  }
}
