/**
 * Lets concurrent callers asking the same question share one answer: the first call
 * for a key runs the work, the others wait for its result.
 *
 * Every flight carries a `token` describing what the caller knew when it started
 * (e.g. the cache generation it read). A caller only joins a flight with the same
 * token, so a caller that has seen a newer state never receives an answer computed
 * from an older one. `forget` drops a flight after a local write for the same reason.
 */
export class SingleFlight<T> {
  private readonly flights = new Map<string, { token: string; promise: Promise<T> }>();

  /** Number of flights in progress. */
  get size(): number {
    return this.flights.size;
  }

  /** Joins the flight for `key` with the same `token`, or starts `work` as a new one. */
  run(key: string, token: string, work: () => Promise<T>): Promise<T> {
    const current = this.flights.get(key);
    if (current !== undefined && current.token === token) return current.promise;
    const promise = work().finally(() => {
      // A newer flight may have replaced this one; leave it alone.
      if (this.flights.get(key)?.promise === promise) this.flights.delete(key);
    });
    this.flights.set(key, { token, promise });
    return promise;
  }

  /** Stops later callers from joining the flight for `key`; callers already in it still get its result. */
  forget(key: string): void {
    this.flights.delete(key);
  }
}
