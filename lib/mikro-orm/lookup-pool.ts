import { createRequire } from 'node:module';
import { Logger } from '@nestjs/common';
import { BackendUnavailableError } from '../api-key.errors.js';
import { safeErrorMessage } from '../internal/safe-error-message.js';

/** Settings of the dedicated lookup pool (`MikroOrmBackendOptions.lookupPool`). */
export interface LookupPoolSettings {
  /** Most connections the pool opens. */
  max: number;
  /** An idle connection is closed after this many milliseconds. */
  idleTimeoutMillis: number;
}

/** What the pool reads from MikroORM 6's public API: the connection's options and the ORM config. */
export interface LookupPoolSource {
  /** `connection.getConnectionOptions()`: host, port, user, password, database and pg's type parsers. */
  connectionOptions: Record<string, unknown>;
  /** `config.get('driverOptions')`: its `connection` is `pg`'s client config (ssl, timeouts, ...). */
  driverOptions: { connection?: unknown } | undefined;
}

interface PgPool {
  query(config: { text: string; values: unknown[] }): Promise<{ rows: unknown[]; rowCount: number | null }>;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  end(): Promise<void>;
}

type PgPoolConstructor = new (config: Record<string, unknown>) => PgPool;

/** MikroORM's `password` may be a callback resolving to a string or `{ password, expirationChecker }`. */
type PasswordCallback = () => Promise<string | { password: string }> | string | { password: string };

/** Shows in `pg_stat_activity`, so the extra connections can be told from the ORM's. */
export const LOOKUP_APPLICATION_NAME = 'nestjs-api-auth lookups';

/**
 * A `pg` pool of the backend's own for key lookups on MikroORM 6, where the ORM's pool
 * is reachable only through knex, whose per-query work (a `Raw` object, `toSQL`, its
 * pool's acquire and release) costs a lookup about as much as the rest of the request.
 * It is built from the ORM's public connection settings with the `pg` that
 * `@mikro-orm/postgresql` itself loads (so the ORM's type parsers apply), opened on
 * first use, and ended by {@link close}. Values are bound by the server, as everywhere.
 */
export class LookupPool {
  private pool: PgPool | null = null;
  private closed = false;
  private readonly Pool: PgPoolConstructor;
  private readonly logger = new Logger('ApiAuth');

  constructor(
    private readonly source: () => LookupPoolSource,
    private readonly settings: LookupPoolSettings,
  ) {
    this.Pool = loadPgPool();
  }

  query(text: string, values: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }> {
    if (this.closed) {
      return Promise.reject(new BackendUnavailableError('PostgreSQL is unavailable: the lookup pool is closed.'));
    }
    return (this.pool ??= this.open()).query({ text, values });
  }

  /** Ends the pool's connections; later lookups fail with `BackendUnavailableError`. */
  async close(): Promise<void> {
    this.closed = true;
    const pool = this.pool;
    this.pool = null;
    await pool?.end();
  }

  private open(): PgPool {
    const { connectionOptions, driverOptions } = this.source();
    const { password, ...connection } = connectionOptions;
    const pool = new this.Pool({
      application_name: LOOKUP_APPLICATION_NAME,
      ...connection,
      ...(typeof password === 'function' ? { password: passwordOf(password as PasswordCallback) } : { password }),
      ...(isObject(driverOptions?.connection) ? driverOptions.connection : {}),
      max: this.settings.max,
      idleTimeoutMillis: this.settings.idleTimeoutMillis,
      // The app's shutdown ends the pool; should an app never close, idle lookups
      // connections must not be what keeps its process alive.
      allowExitOnIdle: true,
    });
    // An idle connection the server drops (a restart, pg_terminate_backend) is reported
    // here; without a listener Node would crash the process. The pool replaces it.
    pool.on('error', (error) => this.logger.warn(`A lookup connection to PostgreSQL failed: ${safeErrorMessage(error)}`));
    return pool;
  }
}

/** `pg`'s `Pool` as `@mikro-orm/postgresql` resolves it: its own dependency, whatever the package manager. */
function loadPgPool(): PgPoolConstructor {
  try {
    const here = createRequire(import.meta.url);
    const fromOrm = createRequire(here.resolve('@mikro-orm/postgresql'));
    return (fromOrm('pg') as { Pool: PgPoolConstructor }).Pool;
  } catch (error) {
    throw new Error(`nestjs-api-auth: MikroOrmBackend lookupPool needs the pg package of @mikro-orm/postgresql: ${safeErrorMessage(error)}`);
  }
}

function passwordOf(callback: PasswordCallback): () => Promise<string> {
  return async () => {
    const value = await callback();
    return typeof value === 'string' ? value : value.password;
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
