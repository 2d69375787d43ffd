import { Logger } from '@nestjs/common';
import type { ApiKeyBackend } from './backends/backend.interface.js';
import type { UsageWriteCoordinator } from './usage-coordinator.js';
import { safeErrorMessage } from './safe-error-message.js';

/** How many key ids the recorder remembers before forgetting the oldest. */
const MEMORY_BOUND = 100_000;

/**
 * Writes `lastUsedAt` off the request path: at most one write per key per interval
 * from this process, batched on the next tick, through the backend's conditional
 * `recordUsage` (so across a cluster the store keeps at most one per interval too).
 * With a {@link UsageWriteCoordinator} shared by the fleet, only the instance that
 * claims the interval even sends the write. A failed write is logged once per outage
 * and never reaches the request.
 */
export class UsageRecorder {
  private readonly logger = new Logger('ApiAuth');
  /** id -> when this process last scheduled a write for it (ms). Insertion-ordered for eviction. */
  private readonly lastScheduled = new Map<string, number>();
  private readonly pending = new Map<string, number>();
  private flushing: Promise<void> | null = null;
  private scheduled = false;
  private failing = false;
  private coordinationFailing = false;

  constructor(
    private readonly backend: ApiKeyBackend,
    private readonly intervalMs: number,
    private readonly enabled: boolean,
    private readonly coordinator: UsageWriteCoordinator | null = null,
  ) {}

  /** Notes a successful verification at `now` of a key last recorded at `lastUsedAt`. */
  record(id: string, lastUsedAt: Date | null, now: number): void {
    if (!this.enabled) return;
    const stored = lastUsedAt ? lastUsedAt.getTime() : -Infinity;
    const local = this.lastScheduled.get(id) ?? -Infinity;
    if (now - Math.max(stored, local) < this.intervalMs) return;

    if (this.lastScheduled.size >= MEMORY_BOUND) {
      // Forget the oldest entry; the worst case is one extra conditional write.
      const oldest = this.lastScheduled.keys().next().value;
      if (oldest !== undefined) this.lastScheduled.delete(oldest);
    }
    this.lastScheduled.delete(id);
    this.lastScheduled.set(id, now);
    this.pending.set(id, now);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  /** Writes everything pending now; resolves when done. Never rejects. */
  flush(): Promise<void> {
    this.scheduled = false;
    if (this.pending.size === 0) return this.flushing ?? Promise.resolve();
    const batch = [...this.pending];
    this.pending.clear();
    const run = Promise.all(
      batch.map(async ([id, at]) => {
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
      }),
    ).then(() => undefined);
    const chained = (this.flushing ?? Promise.resolve()).then(() => run);
    this.flushing = chained;
    void chained.finally(() => {
      if (this.flushing === chained) this.flushing = null;
    });
    return chained;
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
