import type { ApiKey } from '../../api-key.interface.js';
import type { ListAllOptions, ListByOwnerOptions } from '../../backends/backend.interface.js';
import { matchesListAllFilters } from '../../backends/key-status.js';
import { ownerEntry, TIME_WIDTH } from '../redis-record.codec.js';
import { ENTRY_PAGE, INDEX_REPAIR, MEMBER_PAGE } from './redis-layout.v3.scripts.js';
import type { V3Store } from './redis-layout.v3.store.js';

/** A page of an index: its members, the id each names, and each one's pending mark (or none). */
interface IndexPage {
  key: string;
  kind: 'z' | 's';
  members: string[];
  ids: string[];
  marks: unknown[];
}

/**
 * Layout 3's listings. A page is one script on the index's slot (its members and their
 * pending marks), then the members' pointers and records, each a GET on its own slot,
 * in parallel. A member is shown only when its record exists and is that member's (id,
 * owner entry, owner or issuer); the others are skipped, and removed once they carry
 * no pending mark or one past the grace period (see `INDEX_REPAIR`), so an interrupted
 * write is never shown and never lingers.
 */
export class V3Lists {
  constructor(private readonly store: V3Store) {}

  async *listByOwner(ownerId: string, options: ListByOwnerOptions): AsyncIterable<ApiKey> {
    const { limit, after } = options;
    const pageSize = this.store.ctx.options.pageSize;
    const key = this.store.keys.owner(ownerId);
    let bound = after ? `(${ownerEntry(after.createdAt, after.id)}` : '-';
    let yielded = 0;
    while (limit === undefined || yielded < limit) {
      const want = limit === undefined ? pageSize : Math.min(pageSize, limit - yielded);
      const page = await this.entryPage('listByOwner', key, 'asc', bound, want);
      for (const record of await this.records('listByOwner', page, (r) => r.ownerId === ownerId)) {
        yielded++;
        yield record;
      }
      if (page.members.length < want) return;
      bound = `(${page.members[page.members.length - 1]}`;
    }
  }

  async *listAll(options: ListAllOptions): AsyncIterable<ApiKey> {
    const { limit, after, ownerId } = options;
    const pageSize = this.store.ctx.options.pageSize;
    const key = ownerId === undefined ? this.store.keys.all() : this.store.keys.owner(ownerId);
    let bound = after ? `(${ownerEntry(after.createdAt, after.id)}` : '+';
    let yielded = 0;
    while (limit === undefined || yielded < limit) {
      const page = await this.entryPage('listAll', key, 'desc', bound, pageSize);
      const belongs = (r: ApiKey) => ownerId === undefined || r.ownerId === ownerId;
      for (const record of await this.records('listAll', page, belongs, (r) => matchesListAllFilters(r, options))) {
        yielded++;
        yield record;
        if (limit !== undefined && yielded >= limit) return;
      }
      if (page.members.length < pageSize) return;
      bound = `(${page.members[page.members.length - 1]}`;
    }
  }

  async *listByIssuer(issuerId: string): AsyncIterable<ApiKey> {
    const key = this.store.keys.issuer(issuerId);
    let cursor = '0';
    do {
      const [next, members, marks] = await this.store.script<[unknown, unknown[], unknown[]]>(
        'listByIssuer',
        MEMBER_PAGE,
        [key, this.store.keys.marks(key)],
        [cursor, String(this.store.ctx.options.pageSize)],
      );
      const ids = members.map(String);
      yield* await this.records('listByIssuer', { key, kind: 's', members: ids, ids, marks }, (r) => r.issuedById === issuerId);
      cursor = String(next);
    } while (cursor !== '0');
  }

  /** One page of an owner-entry index, in `direction` from `bound`. */
  async entryPage(operation: string, key: string, direction: 'asc' | 'desc', bound: string, count: number): Promise<IndexPage> {
    const [entries, marks] = await this.store.script<[unknown[], unknown[]]>(operation, ENTRY_PAGE, [key, this.store.keys.marks(key)], [
      direction,
      bound,
      String(count),
    ]);
    const members = entries.map(String);
    return { key, kind: 'z', members, ids: members.map((m) => m.slice(TIME_WIDTH + 1)), marks };
  }

  /**
   * The records a page's members stand for, in the page's order, keeping those `accept`
   * takes. A member is its record's while it names it (same id, same owner entry for a
   * ZSET) and the record `belongs` to the index; the others are repaired on the way.
   */
  async records(
    operation: string,
    page: IndexPage,
    belongs: (record: ApiKey) => boolean,
    accept: (record: ApiKey) => boolean = () => true,
  ): Promise<ApiKey[]> {
    const { store } = this;
    const found = await Promise.all(
      page.ids.map(async (id, i) => {
        const pointer = await store.pointer(operation, id);
        const record = pointer && (await store.recordVia(operation, id, pointer))?.record;
        if (!record) return null;
        const own = belongs(record) && (page.kind === 's' || ownerEntry(record.createdAt, record.id) === page.members[i]);
        return own ? record : null;
      }),
    );
    // Only members no write may still be filing; the script checks their marks again, atomically.
    const cutoff = store.now() - store.graceMs;
    const stale = page.members.filter((_, i) => found[i] === null && !(Number(page.marks[i] ?? -Infinity) >= cutoff));
    if (stale.length > 0) {
      await store.script(operation, INDEX_REPAIR, [page.key, store.keys.marks(page.key)], [page.kind, String(cutoff), ...stale]);
    }
    return found.filter((record): record is ApiKey => record !== null && accept(record));
  }
}
