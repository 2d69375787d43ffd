import { ADDED_COLUMNS, API_KEY_COLUMNS, type ApiKeyTable } from './api-key.table.js';
import { toBackendError } from './postgres-errors.js';
import type { SqlRunner } from './sql-runner.js';

/**
 * Creates the key table, its constraints and indexes if missing, adds the columns a table
 * of an earlier release lacks, and refuses a table of that name that is not ours. Safe to
 * race: concurrent callers in any number of processes serialise on an advisory lock.
 */
export async function createApiKeySchema(runner: SqlRunner, table: ApiKeyTable): Promise<void> {
  const ddl = table.createStatements();
  let missing: string[] = [];
  try {
    await runner.transaction(async (run) => {
      // Serialises concurrent start-ups: `create ... if not exists` alone can still
      // collide on PostgreSQL's catalog when two sessions create the same table.
      await run('select pg_advisory_xact_lock(hashtext(?))', [`nestjs-api-auth:${table.qualifiedName}`]);
      if (ddl.schema) await run(ddl.schema);
      await run(ddl.table);
      const columns = await run<{ column_name: string }>(
        'select column_name from information_schema.columns where table_schema = coalesce(?, current_schema()) and table_name = ?',
        [table.schema ?? null, table.tableName],
      );
      const present = new Set(columns.map((row) => row.column_name));
      missing = API_KEY_COLUMNS.filter((column) => !present.has(column));
      // A key table of an earlier release lacks only columns added since; add them
      // (nullable or defaulted, so existing rows stay valid). Any other gap is not our table.
      if (missing.length > 0 && missing.every((column) => column in ADDED_COLUMNS)) {
        await run(ddl.addColumns(missing));
        missing = [];
      }
      if (missing.length === 0) for (const index of ddl.indexes) await run(index);
    });
  } catch (error) {
    throw toBackendError(error, [], table);
  }
  if (missing.length > 0) {
    // A table of that name exists but is not ours (or an older shape): say so plainly.
    throw new Error(
      `nestjs-api-auth: table ${table.qualifiedName} exists but lacks column(s) ${missing.join(', ')}. ` +
        'Migrate it to the shape of ApiKeyEntity or choose another tableName.',
    );
  }
}
