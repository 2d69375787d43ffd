/** Table the entity and the backend use unless told otherwise. */
export const DEFAULT_TABLE_NAME = 'api_keys';

// Plain identifiers only: they are interpolated (quoted) into SQL, and PostgreSQL
// truncates names beyond 63 bytes.
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Returns `value` if it is a safe SQL identifier; throws a configuration error naming `option` otherwise. */
export function validateIdentifier(option: string, value: string): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value)) {
    throw new Error(
      `nestjs-api-auth: MikroORM ${option} must be a plain SQL identifier (letters, digits, _; at most 63 characters), got ${JSON.stringify(value)}.`,
    );
  }
  return value;
}

/** Names of the table's constraints and index, shared by the entity and `ensureSchema`. */
export function apiKeyTableNames(tableName: string) {
  return {
    primaryKey: `${tableName}_pkey`,
    keyHashUnique: `${tableName}_key_hash_unique`,
    ownerIndex: `${tableName}_owner_id_created_at_id_index`,
    issuerIndex: `${tableName}_issued_by_id_id_index`,
    expiresIndex: `${tableName}_expires_at_index`,
    revokedIndex: `${tableName}_revoked_at_index`,
    createdIndex: `${tableName}_created_at_id_index`,
  };
}

/** Columns of the table, in the entity's order. */
export const API_KEY_COLUMNS = [
  'id',
  'name',
  'owner_id',
  'key_hash',
  'hint',
  'scopes',
  'metadata',
  'created_at',
  'updated_at',
  'expires_at',
  'revoked_at',
  'last_used_at',
  'rotated_from_id',
  'environment',
  'policy',
  'version',
  'issued_by_id',
  'disabled_at',
] as const;

/** One of {@link API_KEY_COLUMNS}. */
export type ApiKeyColumn = (typeof API_KEY_COLUMNS)[number];

/**
 * Columns added after the first release, each nullable or with a default, so that
 * `ensureSchema` can add them to an older table and its rows stay valid (an old key
 * reads as `version` 1, issued by nobody, enabled).
 */
export const ADDED_COLUMNS: Readonly<Record<string, string>> = {
  environment: 'varchar(16) null',
  policy: 'jsonb null',
  version: 'int not null default 1',
  issued_by_id: 'varchar(64) null',
  disabled_at: 'timestamptz(3) null',
};

const TIMESTAMP_COLUMNS = ['created_at', 'updated_at', 'expires_at', 'revoked_at', 'last_used_at', 'disabled_at'] as const;

/**
 * A row as {@link ApiKeyTable.selectList} reads it. Timestamps come back as epoch
 * milliseconds (`*_ms`): MikroORM's PostgreSQL connection turns off pg's date
 * parsing, and a number does not depend on the session's `TimeZone` or `DateStyle`.
 */
export interface ApiKeyRow {
  id: string;
  name: string;
  owner_id: string;
  key_hash: string;
  hint: string;
  scopes: string[];
  metadata: Record<string, unknown>;
  created_at_ms: number;
  updated_at_ms: number;
  expires_at_ms: number | null;
  revoked_at_ms: number | null;
  last_used_at_ms: number | null;
  rotated_from_id: string | null;
  environment: string | null;
  policy: Record<string, unknown> | null;
  version: number;
  issued_by_id: string | null;
  disabled_at_ms: number | null;
}

/** SQL fragments for one configured key table. */
export class ApiKeyTable {
  /** The table, quoted and schema-qualified when a schema is set. */
  readonly qualifiedName: string;
  /** The select list producing an {@link ApiKeyRow}. */
  readonly selectList: string;
  readonly names: ReturnType<typeof apiKeyTableNames>;

  constructor(
    readonly tableName: string,
    readonly schema: string | undefined,
  ) {
    validateIdentifier('tableName', tableName);
    if (schema !== undefined) validateIdentifier('schema', schema);
    this.qualifiedName = schema === undefined ? quote(tableName) : `${quote(schema)}.${quote(tableName)}`;
    this.names = apiKeyTableNames(tableName);
    this.selectList = this.selectListOf(null);
  }

  /**
   * {@link selectList} with every column qualified by `alias` (for statements joining
   * another relation), leaving out the columns in `omit`.
   *
   * Written compactly (the column names are fixed lowercase words, so unquoted), since
   * MikroORM 6's knex scans the whole statement text on every call.
   */
  selectListOf(alias: string | null, omit: readonly ApiKeyColumn[] = []): string {
    const prefix = alias === null ? '' : `${quote(alias)}.`;
    return API_KEY_COLUMNS.filter((column) => !omit.includes(column))
      .map((column) =>
        (TIMESTAMP_COLUMNS as readonly string[]).includes(column)
          ? // A distinct alias: one equal to the column would make `order by "created_at"`
            // sort by this expression instead of walking the index. `date_part` computes in
            // float8, exact to the millisecond here; `extract` would compute in numeric,
            // which costs the server noticeably more on the hot path.
            `round(date_part('epoch',${prefix}${column})*1000) as ${column}_ms`
          : `${prefix}${column}`,
      )
      .join(',');
  }

  /**
   * The DDL `ensureSchema` runs: the same schema, table, constraints and index as the
   * entity generates through MikroORM's schema generator or migrator, each guarded by
   * `if not exists` so it is safe on a database that already has them. The indexes come
   * separately so that a same-named table of another shape can be reported before an
   * index on columns it lacks fails.
   */
  createStatements(): { schema: string | null; table: string; indexes: string[]; addColumns: (columns: string[]) => string } {
    const n = this.names;
    return {
      schema: this.schema === undefined ? null : `create schema if not exists ${quote(this.schema)}`,
      table:
        `create table if not exists ${this.qualifiedName} (` +
        '"id" uuid not null, "name" varchar(255) not null, "owner_id" varchar(255) not null, ' +
        '"key_hash" varchar(128) not null, "hint" varchar(64) not null, ' +
        '"scopes" jsonb not null, "metadata" jsonb not null, ' +
        '"created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null, ' +
        '"expires_at" timestamptz(3) null, "revoked_at" timestamptz(3) null, "last_used_at" timestamptz(3) null, ' +
        '"rotated_from_id" uuid null, "environment" varchar(16) null, "policy" jsonb null, ' +
        '"version" int not null default 1, "issued_by_id" varchar(64) null, "disabled_at" timestamptz(3) null, ' +
        `constraint ${quote(n.primaryKey)} primary key ("id"), ` +
        `constraint ${quote(n.keyHashUnique)} unique ("key_hash"))`,
      indexes: [
        `create index if not exists ${quote(n.ownerIndex)} on ${this.qualifiedName} ("owner_id", "created_at", "id")`,
        `create index if not exists ${quote(n.issuerIndex)} on ${this.qualifiedName} ("issued_by_id", "id")`,
        // For purge: finding the expired or revoked rows without a scan of the table.
        `create index if not exists ${quote(n.expiresIndex)} on ${this.qualifiedName} ("expires_at")`,
        `create index if not exists ${quote(n.revokedIndex)} on ${this.qualifiedName} ("revoked_at")`,
        // The admin listing across owners walks it backwards (newest first).
        `create index if not exists ${quote(n.createdIndex)} on ${this.qualifiedName} ("created_at", "id")`,
      ],
      addColumns: (columns) =>
        `alter table ${this.qualifiedName} ` +
        columns.map((column) => `add column if not exists ${quote(column)} ${ADDED_COLUMNS[column]}`).join(', '),
    };
  }
}

/** Quotes an identifier already checked by {@link validateIdentifier}. */
export function quote(identifier: string): string {
  return `"${identifier}"`;
}
