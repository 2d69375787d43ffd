import { BackendUnavailableError, DuplicateApiKeyError } from '../api-key.errors.js';
import type { ApiKeyTable } from './api-key.table.js';

// Socket-level failures: the server is down, unreachable, or dropped the connection.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

// SQLSTATE classes meaning "the server cannot serve this now": connection exception,
// insufficient resources, operator intervention (shutdown, terminated backend,
// statement timeout), system error.
const UNAVAILABLE_SQLSTATE_CLASSES = new Set(['08', '53', '57', '58']);

interface DriverError {
  code?: unknown;
  constraint?: unknown;
  message?: unknown;
  name?: unknown;
  errors?: unknown;
}

/**
 * Turns a failure of a statement on the key table into the contract's errors:
 * a unique violation into `DuplicateApiKeyError`, anything else into
 * `BackendUnavailableError`. The driver's error is never passed on as is: PostgreSQL's
 * `detail` of a unique violation quotes the key hash, and other messages can quote
 * bound values, so only a redacted summary survives, as message and as `cause`.
 */
export function toBackendError(error: unknown, bindings: readonly unknown[], table: ApiKeyTable): Error {
  const driverError = (error ?? {}) as DriverError;
  const code = errorCode(driverError);
  if (code === '23505') {
    // Decide by constraint name: the primary key means a reused id, anything else on
    // this table is the key-hash unique constraint.
    const constraint = typeof driverError.constraint === 'string' ? driverError.constraint : '';
    const isPrimaryKey = constraint === table.names.primaryKey || constraint.endsWith('_pkey');
    return new DuplicateApiKeyError(isPrimaryKey ? 'id' : 'keyHash');
  }
  const summary = redact(describe(driverError), bindings);
  const cause = Object.assign(new Error(summary), { code });
  if (isUnreachable(driverError, code)) {
    return new BackendUnavailableError(`PostgreSQL is unavailable: ${summary}`, { cause });
  }
  return new BackendUnavailableError(`PostgreSQL could not run a statement on ${table.qualifiedName}: ${summary}`, {
    cause,
  });
}

/** Whether the failure is about reaching the server rather than about the statement. */
function isUnreachable(error: DriverError, code: string | undefined): boolean {
  if (code === undefined) return true; // pg's "Connection terminated", knex's pool timeout
  if (NETWORK_CODES.has(code)) return true;
  return /^[0-9A-Z]{5}$/.test(code) && UNAVAILABLE_SQLSTATE_CLASSES.has(code.slice(0, 2));
}

function errorCode(error: DriverError): string | undefined {
  if (typeof error.code === 'string') return error.code;
  // Node reports a failed multi-address connect as an AggregateError of socket errors.
  if (Array.isArray(error.errors)) {
    const first = error.errors.find((e: DriverError) => typeof e?.code === 'string') as DriverError | undefined;
    if (first) return first.code as string;
  }
  return undefined;
}

function describe(error: DriverError): string {
  const code = errorCode(error);
  let message = typeof error.message === 'string' && error.message.length > 0 ? error.message : String(error.name ?? 'error');
  // knex prefixes the driver's message with the statement text; the statement says
  // nothing the caller does not know and buries the reason.
  const separator = message.lastIndexOf(' - ');
  if (separator !== -1 && /^\s*(select|insert|update|delete|create|with)\b/i.test(message)) {
    message = message.slice(separator + 3);
  }
  if (message.length > 300) message = `${message.slice(0, 300)}…`;
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

/**
 * Removes every bound value and anything shaped like a hash from `text`. Bound values
 * are the only secrets a statement of this backend carries; the pattern is a second
 * line of defence for values quoted in a form we did not bind (e.g. re-encoded).
 */
function redact(text: string, bindings: readonly unknown[]): string {
  let out = text;
  for (const value of bindings) {
    if (typeof value === 'string' && value.length >= 6) out = out.split(value).join('[redacted]');
  }
  return out.replace(/[0-9a-fA-F]{32,}/g, '[redacted]');
}
