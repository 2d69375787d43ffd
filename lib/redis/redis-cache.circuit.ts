import type { LoggerService } from '@nestjs/common';
import type { RedisCacheManager } from './redis-cache.options.js';
import { safeErrorMessage } from '../internal/safe-error-message.js';

/** Most invalidations kept for replay; beyond that the oldest outage writes are only bounded by `ttl`. */
const MAX_PENDING = 100_000;
/** A cache still silent after this many `timeoutMs` is down. */
export const DOWN_AFTER_TIMEOUTS = 3;
/** Invalidations replayed at once after an outage. */
const REPLAY_BATCH = 64;

/** A cache operation failed, timed out, or the store reported an error while it ran. */
export class RedisCacheFailure extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedisCacheFailure';
  }
}

/** What the circuit needs from its owner. */
export interface RedisCacheCircuitOptions {
  cache: RedisCacheManager;
  timeoutMs: number;
  retryIntervalMs: number;
  logger: LoggerService;
  /** Resolves when the cache can be written and read back again. */
  probe: () => Promise<void>;
  /** Re-sends the invalidation of one cache id; rejects when it could not. */
  replay: (id: string) => Promise<void>;
  /** What writes do meanwhile, for the outage warning: refused, or made and replayed. */
  unreachableWrites: 'refuse' | 'replay';
}

/**
 * Decides whether the Redis cache may be used, and remembers what must be fixed when it
 * comes back: a failure (a rejection, an operation unanswered for several `timeoutMs`, or
 * an error the store emits) sends lookups to the primary until a probe succeeds, and the
 * invalidations written meanwhile are replayed before the cache is read again
 * (docs/internals.md#the-redis-caches-circuit-redis-cachecircuitts).
 */
export class RedisCacheCircuit {
  /**
   * Entries filled before this instant (ms) are treated as misses. Set on every
   * recovery.
   */
  notBefore = 0;
  private down = false;
  private downSince = 0;
  private probing: Promise<void> | null = null;
  private probeTimer: NodeJS.Timeout | undefined;
  private detached = false;
  /** Store errors seen so far; an operation during which it moves has failed. */
  private errors = 0;
  /** Cache ids whose invalidation must be replayed, with a version so a replay never drops a newer mark. */
  private readonly pending = new Map<string, number>();
  private pendingVersion = 0;
  private droppedInvalidations = 0;
  private readonly onStoreError = () => {
    this.errors++;
  };
  private readonly onCacheEvent = (event: unknown) => {
    if (event !== null && typeof event === 'object' && (event as { error?: unknown }).error !== undefined) this.errors++;
  };

  constructor(private readonly options: RedisCacheCircuitOptions) {
    const { cache } = options;
    for (const event of ['get', 'mget', 'set', 'del'] as const) cache.on?.(event, this.onCacheEvent);
    for (const store of cache.stores ?? []) store.on?.('error', this.onStoreError);
  }

  /** Whether requests may use the cache now. */
  get isUp(): boolean {
    return !this.down;
  }

  /** Invalidations waiting for Redis to come back. */
  get pendingInvalidations(): number {
    return this.pending.size;
  }

  /**
   * Runs one cache operation. A `lookup` waits `timeoutMs`, then rejects so the caller
   * can answer from the primary; a `write` (an invalidation, a probe) waits up to
   * {@link DOWN_AFTER_TIMEOUTS} times longer. A failure, an error event or that longer
   * wait opens the circuit; a lookup that is merely late does not.
   */
  run<T>(operation: () => Promise<T>, kind: 'lookup' | 'write' = 'lookup'): Promise<T> {
    const errorsBefore = this.errors;
    const downAfter = this.options.timeoutMs * DOWN_AFTER_TIMEOUTS;
    const outcome = operation().then((value) => {
      if (this.errors !== errorsBefore) throw new RedisCacheFailure('The Redis cache store reported an error.');
      return value;
    });
    // The watchdog outlives the caller's wait: an operation nobody waits for any more
    // still tells whether Redis answers at all.
    const watchdog = setTimeout(
      () => this.trip(new RedisCacheFailure(`The Redis cache did not answer within ${downAfter} ms.`)),
      downAfter,
    );
    watchdog.unref();
    outcome.then(
      () => clearTimeout(watchdog),
      (error: unknown) => {
        clearTimeout(watchdog);
        this.trip(error);
      },
    );
    const wait = kind === 'write' ? downAfter : this.options.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RedisCacheFailure(`The Redis cache did not answer within ${wait} ms.`)), wait);
      timer.unref();
    });
    return Promise.race([outcome, timeout])
      .catch((error: unknown) => {
        throw error instanceof RedisCacheFailure ? error : new RedisCacheFailure('The Redis cache failed.', { cause: error });
      })
      .finally(() => clearTimeout(timer));
  }

  /** Opens the circuit. Logs only when it was closed, so an outage costs one warning. */
  trip(reason: unknown): void {
    if (this.down) return;
    this.down = true;
    this.downSince = Date.now();
    // A timer rather than request traffic drives the probes, so an instance that went
    // idle after a write during the outage still replays its invalidations.
    if (this.detached) return;
    this.probeTimer = setInterval(() => this.probe(), this.options.retryIntervalMs);
    this.probeTimer.unref();
    this.options.logger.warn(
      `The Redis cache is unavailable (${describe(reason)}); answering from the primary store until it is back. ` +
        (this.options.unreachableWrites === 'refuse'
          ? 'Key writes on this instance are refused meanwhile (503, nothing changed): retry them on another instance.'
          : 'Writes made here meanwhile reach the other instances only when it is back (or after their cache ttl): they may serve those keys as they were until then.'),
    );
  }

  /** Remembers that the entries of cache id `id` must be invalidated once Redis answers. */
  markPending(id: string): void {
    if (!this.pending.has(id) && this.pending.size >= MAX_PENDING) {
      this.droppedInvalidations++;
      return;
    }
    this.pending.set(id, ++this.pendingVersion);
  }

  /** While the circuit is open, starts a probe unless one is running. Never waits for it. */
  probe(): void {
    if (!this.down || this.probing) return;
    const probing = this.recover().catch(() => {
      // Still down; the next probe is due after retryIntervalMs.
    });
    this.probing = probing.finally(() => {
      this.probing = null;
    });
  }

  /** Resolves when the probe in progress (if any) has finished. For tests and shutdown. */
  async settled(): Promise<void> {
    await this.probing;
  }

  /** Stops listening to the cache and probing. Closes nothing. */
  detach(): void {
    this.detached = true;
    clearInterval(this.probeTimer);
    const { cache } = this.options;
    for (const event of ['get', 'mget', 'set', 'del'] as const) cache.off?.(event, this.onCacheEvent);
    for (const store of cache.stores ?? []) store.off?.('error', this.onStoreError);
  }

  private async recover(): Promise<void> {
    await this.options.probe();
    let replayed = 0;
    while (this.pending.size > 0) {
      const batch = [...this.pending].slice(0, REPLAY_BATCH);
      await Promise.all(
        batch.map(async ([id, version]) => {
          await this.options.replay(id);
          if (this.pending.get(id) === version) this.pending.delete(id);
          replayed++;
        }),
      );
    }
    // Synchronous from the last emptiness check on: no write can slip in between.
    this.down = false;
    clearInterval(this.probeTimer);
    this.notBefore = Date.now();
    const seconds = ((this.notBefore - this.downSince) / 1000).toFixed(1);
    this.options.logger.log(
      `The Redis cache is back after ${seconds} s; ${replayed} pending invalidation(s) replayed.`,
    );
    if (this.droppedInvalidations > 0) {
      this.options.logger.warn(
        `${this.droppedInvalidations} invalidation(s) made during the outage exceeded the replay limit; ` +
          'other instances may serve those keys from the cache for up to ttl.',
      );
      this.droppedInvalidations = 0;
    }
  }
}

/** A one-line reason for a log, with anything shaped like a key hash removed. */
function describe(reason: unknown): string {
  const error = reason instanceof RedisCacheFailure && reason.cause !== undefined ? reason.cause : reason;
  return safeErrorMessage(error);
}
