/** Rejection of a call whose reply did not come within its deadline. */
export class ReplyDeadlineExceeded extends Error {
  constructor(readonly ms: number) {
    super(`No reply within ${ms} ms.`);
  }
}

interface Pending {
  deadline: number;
  reject: (error: Error) => void;
}

/**
 * Fails calls whose reply takes longer than `ms`, with one shared sweep instead of a
 * timer per call: a `setTimeout` + `clearTimeout` pair per command cost more than the
 * Redis round trip itself under load. Calls are tracked in start order, so all share
 * one deadline length, and each sweep stops at the first call still in time. A late
 * reply is noticed between `ms` and `ms * 1.25` after the call.
 */
export class ReplyDeadlines {
  private readonly pending = new Set<Pending>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly ms: number) {}

  /** `promise`, or a rejection with `ReplyDeadlineExceeded` once the deadline passes. */
  track<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { deadline: Date.now() + this.ms, reject };
      this.pending.add(entry);
      this.sweeper ??= setInterval(() => this.sweep(), Math.max(10, Math.floor(this.ms / 4))).unref();
      promise.then(
        (value) => {
          this.pending.delete(entry);
          resolve(value);
        },
        (error: unknown) => {
          this.pending.delete(entry);
          reject(error);
        },
      );
    });
  }

  private sweep(): void {
    const now = Date.now();
    for (const entry of this.pending) {
      if (entry.deadline > now) break;
      this.pending.delete(entry);
      entry.reject(new ReplyDeadlineExceeded(this.ms));
    }
    if (this.pending.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}
