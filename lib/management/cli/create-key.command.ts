import { parseArgs } from 'node:util';
import { API_AUTH_OPTIONS } from '../../api-auth.constants.js';
import type { ResolvedApiAuthOptions } from '../../api-auth.options.js';
import { ApiKeyValidationError } from '../../api-key.errors.js';
import { ApiKeyService } from '../../api-key.service.js';
import { MemoryBackend } from '../../backends/memory.backend.js';
import { openAppContext, type CommandIO } from './app-context.js';
import { API_AUTH_ROUTES_OPTIONS, DEFAULT_ADMIN_SCOPE, type ResolvedApiAuthRoutesOptions } from '../api-auth-routes.options.js';

export type { CommandIO } from './app-context.js';

export const CREATE_KEY_USAGE = `Usage: nestjs-api-auth create-key --module <file> --owner <id> [options]

Issues an API key through the app's own ApiAuthModule configuration (backend,
prefix, pepper) without starting its HTTP server, and prints the key once.

  --module <file>     compiled JS file exporting the app's root module (required)
  --export <name>     name of the module export (default: AppModule)
  --owner <id>        owner of the key (required)
  --name <name>       label of the key (default: "admin key")
  --scope <scope>     a scope to grant; repeat for several
                      (default: the management admin scope, "${DEFAULT_ADMIN_SCOPE}")
  --expires-at <iso>  expiry, an ISO 8601 date-time (default: never)
  --help              show this help

Exit codes: 0 issued, 1 failed, 2 bad usage.`;

/**
 * `nestjs-api-auth create-key`: bootstraps the first admin key (or any key) without
 * HTTP, through `NestFactory.createApplicationContext(AppModule)` and
 * `ApiKeyService.issue`. Resolves to the process exit code.
 */
export async function runCreateKeyCommand(argv: string[], io: CommandIO): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        module: { type: 'string' },
        export: { type: 'string', default: 'AppModule' },
        owner: { type: 'string' },
        name: { type: 'string', default: 'admin key' },
        scope: { type: 'string', multiple: true },
        'expires-at': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    io.stderr(`${(error as Error).message}\n\n${CREATE_KEY_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.stderr(`${CREATE_KEY_USAGE}\n`);
    return 0;
  }
  if (!values.module || !values.owner) {
    io.stderr(`--module and --owner are required.\n\n${CREATE_KEY_USAGE}\n`);
    return 2;
  }

  const app = await openAppContext(io, values.module, values.export!);
  if (typeof app === 'number') return app;
  try {
    const options = app.get<ResolvedApiAuthOptions>(API_AUTH_OPTIONS, { strict: false });
    if (options.backend instanceof MemoryBackend) {
      io.stderr(
        'The app keeps keys in memory, so a key issued by this command would vanish when it exits.\n' +
          'Configure a persistent backend (MikroOrmBackend, RedisBackend, ...) for the module first.\n',
      );
      return 1;
    }
    let adminScope = DEFAULT_ADMIN_SCOPE;
    try {
      adminScope = app.get<ResolvedApiAuthRoutesOptions>(API_AUTH_ROUTES_OPTIONS, { strict: false }).adminScope ?? adminScope;
    } catch {
      // The management routes are off: the default scope still names the intent.
    }
    const { key, apiKey } = await app.get(ApiKeyService, { strict: false }).issue({
      ownerId: values.owner,
      name: values.name!,
      scopes: values.scope?.length ? values.scope : [adminScope],
      expiresAt: values['expires-at'] ?? null,
    });
    io.stdout(`${key}\n`);
    io.stderr(
      `Issued key ${apiKey.id} ("${apiKey.name}") for owner "${apiKey.ownerId}" with scopes ${apiKey.scopes.join(', ')}.\n` +
        'It is shown once and stored only as a hash: keep it now.\n',
    );
    return 0;
  } catch (error) {
    io.stderr(`Could not issue the key: ${(error as Error).message}\n`);
    return error instanceof ApiKeyValidationError ? 2 : 1;
  } finally {
    await app.close();
  }
}
