import { parseArgs } from 'node:util';
import { API_AUTH_OPTIONS } from '../../api-auth.constants.js';
import type { ResolvedApiAuthOptions } from '../../api-auth.options.js';
import type { LayoutMigrationOptions, LayoutMigrationReport } from '../../redis/layout/redis-layout.v3.migrate.js';
import { openAppContext, type CommandIO } from './app-context.js';

export const MIGRATE_REDIS_LAYOUT_USAGE = `Usage: nestjs-api-auth migrate-redis-layout --module <file> [options]

Copies the keys of a RedisBackend layout-2 store into the layout 3 the app's
RedisBackend is configured with (option layout: 3), without starting its HTTP
server. Safe to run while the app runs and to run again: a rerun copies only what
is new or changed. Prints the report as JSON on stdout, progress on stderr.

  --module <file>          compiled JS file exporting the app's root module (required)
  --export <name>          name of the module export (default: AppModule)
  --from-namespace <ns>    namespace of the layout-2 store (default: the backend's own)
  --batch-size <n>         keys per SCAN step, 1-1000 (default: 200)
  --cursor <cursor>        resume from this cursor (printed with the progress)
  --help                   show this help

Exit codes: 0 done, 1 failed, 2 bad usage.`;

/** The backend the command needs: a RedisBackend (layout 3), found by its method. */
interface MigratingBackend {
  migrateFromLayout2(options: LayoutMigrationOptions): Promise<LayoutMigrationReport>;
  readonly layoutVersion?: number;
}

/**
 * `nestjs-api-auth migrate-redis-layout`: `RedisBackend.migrateFromLayout2()` through the
 * app's own module (its Redis client and namespace). Resolves to the exit code.
 */
export async function runMigrateRedisLayoutCommand(argv: string[], io: CommandIO): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        module: { type: 'string' },
        export: { type: 'string', default: 'AppModule' },
        'from-namespace': { type: 'string' },
        'batch-size': { type: 'string' },
        cursor: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    io.stderr(`${(error as Error).message}\n\n${MIGRATE_REDIS_LAYOUT_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.stderr(`${MIGRATE_REDIS_LAYOUT_USAGE}\n`);
    return 0;
  }
  const batchSize = values['batch-size'] === undefined ? undefined : Number(values['batch-size']);
  if (!values.module || (batchSize !== undefined && !(Number.isSafeInteger(batchSize) && batchSize >= 1 && batchSize <= 1000))) {
    io.stderr(`--module is required, and --batch-size must be an integer from 1 to 1000.\n\n${MIGRATE_REDIS_LAYOUT_USAGE}\n`);
    return 2;
  }
  const app = await openAppContext(io, values.module, values.export!);
  if (typeof app === 'number') return app;
  try {
    const backend = app.get<ResolvedApiAuthOptions>(API_AUTH_OPTIONS, { strict: false }).backend as Partial<MigratingBackend>;
    if (typeof backend.migrateFromLayout2 !== 'function' || backend.layoutVersion !== 3) {
      io.stderr('The app\'s backend is not a RedisBackend with layout 3: configure `new RedisBackend(client, { layout: 3 })` first.\n');
      return 1;
    }
    const report = await backend.migrateFromLayout2({
      namespace: values['from-namespace'],
      batchSize,
      cursor: values.cursor,
      onProgress: (r) => io.stderr(`copied ${r.copied}, updated ${r.updated}, unchanged ${r.unchanged}, conflicts ${r.conflicts}; resume with --cursor ${r.cursor}\n`),
    });
    io.stdout(`${JSON.stringify(report)}\n`);
    return 0;
  } catch (error) {
    io.stderr(`The migration stopped: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await app.close();
  }
}
