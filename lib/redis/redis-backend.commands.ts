import { BackendUnavailableError } from '../api-key.errors.js';
import { callThen, callWithin, ReplyDeadlineExceeded, ReplyDeadlines } from '../internal/reply-deadlines.js';
import { redactedError } from '../internal/safe-error-message.js';
import type { ResolvedRedisBackendOptions } from './redis-backend.options.js';
import type { RedisCommandClient } from './redis-client.types.js';
import { sendCommandForKey } from './redis-cluster.client.js';
import type { RedisScript } from './redis.scripts.js';

/**
 * How `RedisBackend` talks to Redis: every command and script within the backend's
 * deadline, `WAIT` after management writes when `waitForReplicas` asks for it, and
 * failures as `BackendUnavailableError` that never quote a reply (replies can echo
 * arguments, and those include key hashes).
 */
export class RedisBackendCommands {
  private readonly deadlines: ReplyDeadlines | undefined;

  constructor(
    private readonly client: RedisCommandClient,
    commandTimeoutMs: number,
    private readonly waitForReplicas: ResolvedRedisBackendOptions['waitForReplicas'],
  ) {
    this.deadlines = commandTimeoutMs > 0 ? new ReplyDeadlines(commandTimeoutMs) : undefined;
  }

  script<T = unknown>(operation: string, script: RedisScript, keys: string[], args: string[], decode?: (reply: unknown) => T): Promise<T> {
    return this.replicated(operation, keys[0], () => script.run(this.client, keys, args), decode);
  }

  /** A plain write command (its key is `args[1]`), with `WAIT` after it as for {@link script}. */
  write<T = unknown>(operation: string, args: string[], decode?: (reply: unknown) => T): Promise<T> {
    return this.replicated(operation, args[1], () => this.client.sendCommand(args), decode);
  }

  /** `run`, then `WAIT` on the connection of `key` when `operation` is a replicated write. */
  private replicated<T>(operation: string, key: string | undefined, run: () => Promise<unknown>, decode?: (reply: unknown) => T): Promise<T> {
    const wait = this.waitForReplicas;
    if (wait && key !== undefined && REPLICATED_WRITES.has(operation)) {
      return this.guard(
        operation,
        async () => {
          const reply = await run();
          // On the connection that ran the write (routed by the same first key), so it waits for it.
          const acknowledged = Number(await sendCommandForKey(this.client, key, ['WAIT', String(wait.replicas), String(wait.timeoutMs)]));
          if (!(acknowledged >= wait.replicas)) throw new ReplicasDidNotAcknowledge(acknowledged, wait);
          return reply;
        },
        decode,
      );
    }
    return this.guard(operation, run, decode);
  }

  command<T = unknown>(operation: string, args: string[], decode?: (reply: unknown) => T): Promise<T> {
    return this.guard(operation, () => this.client.sendCommand(args), decode);
  }

  /** `command` answering through callbacks, with no promise of its own (see `callThen`). */
  commandThen<T>(operation: string, args: string[], decode: (reply: unknown) => T, onValue: (value: T) => void, onError: (error: unknown) => void): void {
    callThen(() => this.client.sendCommand(args), this.deadlines, (error) => this.unavailable(operation, error), decode, onValue, onError);
  }

  /** One client call with the backend's deadline and error mapping (see `callWithin`). */
  guard<T>(operation: string, run: () => Promise<unknown>, decode?: (reply: unknown) => T): Promise<T> {
    return callWithin(run, this.deadlines, (error) => this.unavailable(operation, error), decode);
  }

  /**
   * Only the error's class name goes into the message, and only a redacted copy of it
   * into `cause`: a reply's text can echo command arguments, and those include key
   * hashes.
   */
  private unavailable(operation: string, error: unknown): BackendUnavailableError {
    if (error instanceof ReplyDeadlineExceeded) {
      // A write that timed out may still have been applied, all or nothing (scripts are atomic).
      return new BackendUnavailableError(`Redis did not answer ${operation} within ${error.ms} ms.`, { cause: error });
    }
    const kind = error instanceof Error ? error.constructor.name : typeof error;
    return new BackendUnavailableError(`Redis could not complete ${operation} (${kind}).`, { cause: redactedError(error) });
  }
}

/** The writes `waitForReplicas` applies to: every management write, not usage writes. */
const REPLICATED_WRITES = new Set(['create', 'update', 'delete', 'purge', 'replaceHash']);

/** Fewer replicas than `waitForReplicas.replicas` acknowledged a write in time. */
class ReplicasDidNotAcknowledge extends Error {
  constructor(acknowledged: number, wait: { replicas: number; timeoutMs: number }) {
    super(`${acknowledged} of ${wait.replicas} replicas acknowledged the write within ${wait.timeoutMs} ms; a failover now could lose it.`);
  }
}
