import { Logger } from '@nestjs/common';
import type { ApiKeyBackend } from '../backends/backend.interface.js';
import type { UsageWriteCoordinator } from './usage-coordinator.js';
import { safeErrorMessage } from '../internal/safe-error-message.js';

/** How many key ids the recorder remembers before forgetting the oldest. */
const MEMORY_BOUND = 100_000;

/** Bounds of the usage writes a {@link UsageRecorder} keeps in memory. */
export interface UsageRecorderLimits {
  /**
   * Most usage writes (claim included) in flight at once. A store that slows down then
   * sees at most this many of them, however many requests arrive, and they do not crowd
   * the lookups out of its connection pool. Default `16`.
   */
  maxWritesInFlight: number;
  /**
   * Most keys whose write waits for a slot. Past it the oldest waiting update is
   * dropped (its key is written again on its next use): losing a `lastUsedAt` update
   * is acceptable, growing memory while the store is slow is not. Default `10000`.
   */
  maxQueuedWrites: number;
}

export const DEFAULT_USAGE_RECORDER_LIMITS: Readonly<UsageRecorderLimits> = Object.freeze({
  maxWritesInFlight: 16,
  maxQueuedWrites: 10_000,
});

/**
 * Writes `lastUsedAt` off the request path: at most one write per key per interval from
 * this process, through the backend's conditional `recordUsage`, claimed through the
 * fleet's coordinator when there is one. Failures are logged once per outage; memory
 * stays bounded whatever the store does (docs/internals.md#usage-writes-usage-recorderts).
 */
export class UsageRecorder {
  private readonly logger = new Logger('ApiAuth');
  private readonly limits: UsageRecorderLimits;
  /** id -> when this process last scheduled a write for it (ms). Insertion-ordered for eviction. */
  private readonly lastScheduled = new Map<string, number>();
  /** Keys waiting for a write slot, oldest first: id -> the use (ms) the write will carry. */
  private readonly queued = new Map<string, number>();
  /** Keys whose write is in flight: id -> a later use to write once it settles, if any. */
  private readonly inFlight = new Map<string, number | undefined>();
  private idleWaiters: Array<() => void> = [];
  private scheduled = false;
  private failing = false;
  private coordinationFailing = false;
  /** Set by the first dropped update; cleared once the queue has drained. */
  private dropping = false;

  constructor(
    private readonly backend: ApiKeyBackend,
    private readonly intervalMs: number,
    private readonly enabled: boolean,
    private readonly coordinator: UsageWriteCoordinator | null = null,
    limits: Partial<UsageRecorderLimits> = {},
  ) {
    this.limits = { ...DEFAULT_USAGE_RECORDER_LIMITS, ...limits };
  }

  /** Usage writes running now (at most `maxWritesInFlight`). */
  get writesInFlight(): number {
    return this.inFlight.size;
  }

  /** Keys whose update waits: for a write slot, or for the key's write in flight to settle. */
  get pendingWrites(): number {
    let later = 0;
    for (const at of this.inFlight.values()) if (at !== undefined) later++;
    return this.queued.size + later;
  }

  /** Notes a successful verification at `now` of a key last recorded at `lastUsedAt`. */
  record(id: string, lastUsedAt: Date | null, now: number): void {
    if (!this.enabled) return;
    const stored = lastUsedAt ? lastUsedAt.getTime() : -Infinity;
    // A recent stored time answers most calls without the lookup by id, which hashes the
    // id: a new string on every read from a remote store.
    if (now - stored < this.intervalMs) return;
    const local = this.lastScheduled.get(id) ?? -Infinity;
    if (now - local < this.intervalMs) return;

    if (this.lastScheduled.size >= MEMORY_BOUND) {
      // Forget the oldest entry; the worst case is one extra conditional write.
      const oldest = this.lastScheduled.keys().next().value;
      if (oldest !== undefined) this.lastScheduled.delete(oldest);
    }
    this.lastScheduled.delete(id);
    this.lastScheduled.set(id, now);
    this.enqueue(id, now);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.pump());
    }
  }

  /**
   * Starts every waiting write now and resolves once nothing is waiting or in flight,
   * including writes of uses that arrive meanwhile. Never rejects; never resolves
   * while the store hangs (shutdown bounds the wait).
   */
  flush(): Promise<void> {
    this.pump();
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private enqueue(id: string, at: number): void {
    if (this.inFlight.has(id)) {
      // One write per key at a time: the next one carries the latest use.
      this.inFlight.set(id, Math.max(this.inFlight.get(id) ?? at, at));
      return;
    }
    const waiting = this.queued.get(id);
    if (waiting !== undefined) {
      // Keeps its place in the queue, so a busy key is not pushed back by its own uses.
      this.queued.set(id, Math.max(waiting, at));
      return;
    }
    if (this.queued.size >= this.limits.maxQueuedWrites) this.dropOldest();
    this.queued.set(id, at);
  }

  private dropOldest(): void {
    const oldest = this.queued.keys().next().value;
    if (oldest === undefined) return;
    this.queued.delete(oldest);
    // So the key's next use is written, rather than waiting out an interval unwritten.
    this.lastScheduled.delete(oldest);
    if (!this.dropping) {
      this.dropping = true;
      this.logger.warn(
        `Key usage writes are not keeping up (${this.limits.maxWritesInFlight} in flight, ${this.limits.maxQueuedWrites} waiting); ` +
          'dropping the oldest lastUsedAt updates until the store catches up.',
      );
    }
  }

  /** Starts waiting writes while there are free slots. */
  private pump(): void {
    this.scheduled = false;
    while (this.inFlight.size < this.limits.maxWritesInFlight) {
      const next = this.queued.entries().next().value;
      if (next === undefined) break;
      const [id, at] = next;
      this.queued.delete(id);
      this.inFlight.set(id, undefined);
      void this.write(id, at).then(() => this.settle(id));
    }
    if (this.queued.size === 0 && this.dropping) {
      this.dropping = false;
      this.logger.log('Key usage writes caught up.');
    }
    if (this.isIdle()) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private settle(id: string): void {
    const later = this.inFlight.get(id);
    this.inFlight.delete(id);
    if (later !== undefined) this.enqueue(id, later);
    this.pump();
  }

  private isIdle(): boolean {
    return this.queued.size === 0 && this.inFlight.size === 0;
  }

  /** One key's write. Never rejects. */
  private async write(id: string, at: number): Promise<void> {
    if (!(await this.claim(id))) return;
    try {
      // `record` treats a write exactly one interval old as stale; the backend's
      // condition is "earlier than staleBefore", hence the + 1.
      await this.backend.recordUsage(id, new Date(at), new Date(at - this.intervalMs + 1));
      if (this.failing) {
        this.failing = false;
        this.logger.log('Recording key usage works again.');
      }
    } catch (error) {
      // Let the next use, here or elsewhere, try again rather than waiting a whole interval.
      this.lastScheduled.delete(id);
      void this.release(id);
      if (!this.failing) {
        this.failing = true;
        this.logger.warn(`Could not record key usage: ${safeErrorMessage(error)}`);
      }
    }
  }

  /** Hands a claim back; a failure to do so only delays the next write to the interval's end. */
  private async release(id: string): Promise<void> {
    try {
      await this.coordinator?.release?.(id);
    } catch {
      // The claim expires on its own.
    }
  }

  /** Whether this instance should write now. A coordinator that cannot answer means yes. */
  private async claim(id: string): Promise<boolean> {
    // An interval of 0 asks for every use to be written: there is nothing to share out.
    if (this.coordinator === null || this.intervalMs === 0) return true;
    try {
      const claimed = await this.coordinator.claim(id, this.intervalMs);
      if (this.coordinationFailing) {
        this.coordinationFailing = false;
        this.logger.log('Coordinating key usage writes across instances works again.');
      }
      if (claimed === true) return true;
      // Another instance writes this interval. Stay quiet until its claim ends: no
      // longer, or both could wait past it and skip a whole interval.
      if (typeof claimed === 'number' && claimed >= 0 && this.lastScheduled.has(id)) {
        this.lastScheduled.set(id, Date.now() - this.intervalMs + Math.min(claimed, this.intervalMs));
      }
      return false;
    } catch (error) {
      if (!this.coordinationFailing) {
        this.coordinationFailing = true;
        this.logger.warn(
          `Could not coordinate key usage writes across instances; each instance writes its own until it works again: ${safeErrorMessage(error)}`,
        );
      }
      return true;
    }
  }
}
