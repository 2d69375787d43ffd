/**
 * The fleet soak's own database on the machine's PostgreSQL (never reconfigured):
 * `node fleet-database.js create|drop|exists NAME`. `create` also makes the keys table
 * and a trigger that logs every change of `last_used_at` into `fleet_usage_writes`,
 * so the driver counts the writes the whole fleet made, as the database saw them.
 * DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres) is the admin
 * connection; `exists` exits 0 when the database exists, 1 otherwise.
 */
import { MikroORM } from '@mikro-orm/postgresql';
import { ApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

/** The URL of database `name` on the admin connection's server. */
export function databaseUrl(name: string, base = ADMIN_URL): string {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

async function main(): Promise<number> {
  const [command, name] = process.argv.slice(2);
  if (!name || !/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error('usage: fleet-database.js create|drop|exists NAME');
  const admin = await MikroORM.init({ clientUrl: ADMIN_URL, entities: [ApiKeyEntity], debug: false });
  try {
    const connection = admin.em.getConnection();
    if (command === 'exists') {
      const rows = await connection.execute<{ n: number }[]>('select count(*)::int as n from pg_database where datname = ?', [name]);
      return rows[0]!.n > 0 ? 0 : 1;
    }
    if (command === 'drop') {
      await connection.execute(`drop database if exists "${name}" with (force)`);
      return 0;
    }
    if (command !== 'create') throw new Error(`unknown command ${command}`);
    await connection.execute(`create database "${name}"`);
  } finally {
    await admin.close();
  }
  const orm = await MikroORM.init({ clientUrl: databaseUrl(name), entities: [ApiKeyEntity], debug: false });
  try {
    await new MikroOrmBackend(orm).ensureSchema();
    const connection = orm.em.getConnection();
    await connection.execute('create table fleet_usage_writes (id uuid not null, at timestamptz not null default clock_timestamp())');
    await connection.execute(
      'create function fleet_log_usage() returns trigger language plpgsql as $$ begin ' +
        'insert into fleet_usage_writes (id) values (new.id); return new; end $$',
    );
    await connection.execute(
      'create trigger fleet_usage_writes after update of last_used_at on api_keys for each row ' +
        'when (old.last_used_at is distinct from new.last_used_at) execute function fleet_log_usage()',
    );
  } finally {
    await orm.close();
  }
  return 0;
}

if (process.argv[1]?.endsWith('fleet-database.js')) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`fleet-database: ${(error as Error).message}`);
      process.exit(2);
    },
  );
}
