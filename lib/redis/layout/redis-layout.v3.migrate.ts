import { sendCommandForKey } from '../redis-cluster.client.js';
import { REDIS_SCHEMA_VERSION } from '../redis-backend.options.js';
import type { RedisLayoutContext } from './redis-layout.js';
import { escapeGlob } from './redis-layout.js';
import type { RedisLayoutV3 } from './redis-layout.v3.js';

/** Options of `RedisBackend.migrateFromLayout2()`. */
export interface LayoutMigrationOptions {
  /**
   * Namespace of the layout-2 store to copy from. Default: the backend's own. On a
   * cluster, layout 2 had a hash-tagged namespace (`"{api-auth}:"`) and layout 3 cannot
   * have one, so name it here.
   */
  namespace?: string;
  /** Id keys per SCAN step (each copied before the next step). 1-1000, default `200`. */
  batchSize?: number;
  /** Where to resume: the `cursor` of a report an interrupted run gave. Default `"0"` (the start). */
  cursor?: string;
  /** Called after each step with the totals so far and the cursor to resume from. */
  onProgress?: (report: LayoutMigrationReport) => void;
}

/** What a migration run did. */
export interface LayoutMigrationReport {
  /** The SCAN cursor after the last step: `"0"` once the whole store was read. */
  cursor: string;
  /** Layout-2 records read. */
  scanned: number;
  /** Copied into layout 3 (not there before). */
  copied: number;
  /** Already copied, and replaced by a later version layout 2 held. */
  updated: number;
  /** Already copied, at the same version: nothing written. */
  unchanged: number;
  /**
   * Not copied: layout 3 holds the id under another key hash, or the hash under
   * another id (a key written to both layouts). Left as they are, for you to look at.
   */
  conflicts: number;
}

/**
 * Copies every record of a layout-2 store into `layout`, walking layout 2's id index
 * with SCAN (on a cluster, on the node of layout 2's one slot). Each record goes
 * through layout 3's own create (pointer, entries, record, settle), its stored text and
 * its Redis expiry unchanged. Safe while layout 2 is in use and safe to rerun: a rerun
 * copies what is new and brings forward what changed, and writes nothing otherwise.
 */
export async function migrateFromLayout2(
  layout: RedisLayoutV3,
  ctx: Omit<RedisLayoutContext, 'base'>,
  options: LayoutMigrationOptions,
): Promise<LayoutMigrationReport> {
  const from = `${options.namespace ?? ctx.options.namespace}${REDIS_SCHEMA_VERSION}:`;
  const batchSize = options.batchSize ?? 200;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 1000) {
    throw new Error(`RedisBackend.migrateFromLayout2: option "batchSize" must be an integer from 1 to 1000 (got ${String(batchSize)}).`);
  }
  // Routed by a key of layout 2: on a cluster, its one slot's node holds every key.
  const anchor = `${from}expiring`;
  const send = (args: string[]) => ctx.commands.guard('migrateFromLayout2', () => sendCommandForKey(ctx.client, anchor, args));
  const report: LayoutMigrationReport = { cursor: options.cursor ?? '0', scanned: 0, copied: 0, updated: 0, unchanged: 0, conflicts: 0 };
  do {
    const [next, idKeys] = (await send(['SCAN', report.cursor, 'MATCH', `${escapeGlob(from)}id:*`, 'COUNT', String(batchSize)])) as [
      unknown,
      unknown[],
    ];
    const outcomes = await Promise.all(
      idKeys.map(async (idKey) => {
        const hash = await send(['GET', String(idKey)]);
        if (hash === null || hash === undefined) return null;
        const recordKey = `${from}hash:${String(hash)}`;
        const [stored, expireTime] = await Promise.all([send(['GET', recordKey]), send(['PEXPIRETIME', recordKey])]);
        if (stored === null || stored === undefined) return null;
        return layout.copy(String(stored), Number(expireTime) > 0 ? String(expireTime) : '');
      }),
    );
    for (const outcome of outcomes) {
      if (outcome === null) continue;
      report.scanned++;
      if (outcome === 'conflict') report.conflicts++;
      else report[outcome]++;
    }
    report.cursor = String(next);
    options.onProgress?.({ ...report });
  } while (report.cursor !== '0');
  return report;
}
