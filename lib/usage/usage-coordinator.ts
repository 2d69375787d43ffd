/**
 * Decides which instance of a fleet writes a key's `lastUsedAt` for the current
 * interval, so the store sees at most one usage write per key per interval across the
 * fleet instead of one per instance. `RedisUsageCoordinator` (from
 * `nestjs-api-auth/redis`) implements it with `SET NX PX`; give one to
 * `ApiAuthModule` as `usageCoordinator`.
 *
 * A coordinator only ever saves writes. When it fails (rejects), the usage recorder
 * writes anyway: the store's conditional write still keeps at most one *successful*
 * write per interval, and a Redis outage costs extra writes, never a lost one or a
 * failed request.
 */
export interface UsageWriteCoordinator {
  /**
   * Claims the usage write of key `id` for the next `intervalMs` milliseconds.
   * Resolves `true` when this instance should write now. When another instance holds
   * the interval: how many milliseconds its claim has left, so this instance asks
   * again when it ends, or `false` to ask again a whole interval from now (which can
   * skip an interval: the other claim started a little later than this instance
   * thinks). Rejects when it cannot tell; it should settle in bounded time, since
   * pending usage writes wait for it.
   */
  claim(id: string, intervalMs: number): Promise<boolean | number>;

  /**
   * Gives a claim back after the write it was taken for failed, so the next use, on
   * any instance, writes instead of waiting out the interval. Optional.
   */
  release?(id: string): Promise<void>;
}

/**
 * The default: every instance may write. Each process still writes at most once per
 * key per interval, and the store's conditional write keeps at most one successful
 * write per interval; with N instances the store receives up to N attempts.
 */
export class NoopUsageWriteCoordinator implements UsageWriteCoordinator {
  claim(): Promise<boolean> {
    return Promise.resolve(true);
  }
}
