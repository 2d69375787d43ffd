import { randomInt } from 'node:crypto';
import { BackendUnavailableError } from '../api-key.errors.js';
import { RedisCacheFailure, type RedisCacheCircuit } from './redis-cache.circuit.js';
import { formatGeneration, newGenerationToken, newLeaseWriter, otherLiveLeases, type WriteLease } from './redis-cache.generation.js';
import type { RedisCacheGenerationWriter } from './redis-cache.generation-writer.js';
import { redisCacheKeys, type RedisCacheKeys } from './redis-cache.keys.js';
import type { RedisCacheInvalidation, ResolvedRedisCacheOptions } from './redis-cache.options.js';

/**
 * How much longer a write lease lasts than the write may take (`writeTimeoutMs`): the
 * clocks of the instances may differ by this much before a reader takes a lease for
 * ended while the write it covers can still be acknowledged.
 */
export const LEASE_MARGIN_MS = 1_000;

/** Most rounds of placing a write lease against writers of the same key on other instances. */
const MAX_LEASE_ATTEMPTS = 12;
const pause = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/** What the write leases need from the cache backend that owns them. */
export interface RedisCacheWriteLeasesOptions {
  settings: Pick<ResolvedRedisCacheOptions, 'namespace' | 'writeTimeoutMs' | 'unreachableWrites'>;
  circuit: RedisCacheCircuit;
  generations: RedisCacheGenerationWriter;
  /** Stops later lookups of a cache id from joining a primary read that began before the write. */
  forget: (id: string) => void;
  /** Tells the invalidation hook; never throws. */
  notify: (invalidation: RedisCacheInvalidation) => void;
}

/**
 * Holds keys back in Redis while the primary writes them, so that no instance serves
 * the old record once a write is acknowledged (docs/internals.md, "Write leases";
 * docs/redis-cache.md, "Writes while Redis is unreachable").
 */
export class RedisCacheWriteLeases {
  private readonly settings: RedisCacheWriteLeasesOptions['settings'];
  private readonly circuit: RedisCacheCircuit;
  private readonly generations: RedisCacheGenerationWriter;
  private readonly forget: (id: string) => void;
  private readonly notify: (invalidation: RedisCacheInvalidation) => void;
  private readonly leaseMs: number;

  constructor(options: RedisCacheWriteLeasesOptions) {
    this.settings = options.settings;
    this.circuit = options.circuit;
    this.generations = options.generations;
    this.forget = options.forget;
    this.notify = options.notify;
    this.leaseMs = leaseMsFor(options.settings.writeTimeoutMs);
  }

  /**
   * Runs one write of existing keys (`hashes`) in the primary so that no instance reading
   * this Redis serves the old record once it is acknowledged, even if this instance loses
   * Redis in between: first each key's generation takes a lease (readers then treat the
   * cache as a miss and fill nothing); then the primary write, within what is left of
   * `writeTimeoutMs`; then a new generation without the lease, and the invalidation hook.
   * Should this instance die or lose Redis before that, readers bypass the cache until
   * the lease ends and then fill from the primary, which by then holds the write.
   *
   * When the lease cannot be placed: `unreachableWrites: 'refuse'` rejects with
   * `BackendUnavailableError` without touching the primary; `'replay'` writes anyway and
   * replays the invalidation later (docs/redis-cache.md, "Writes while Redis is
   * unreachable").
   */
  async write<T>(hashes: readonly string[], id: string, write: () => Promise<T>): Promise<T> {
    const lease: WriteLease = { writer: newLeaseWriter(), until: Date.now() + this.leaseMs };
    const deadline = lease.until - LEASE_MARGIN_MS;
    const keys = hashes.map((hash) => redisCacheKeys(this.settings.namespace, hash));
    for (const key of keys) this.forget(key.id);
    let leased = false;
    try {
      await this.place(keys, lease, deadline);
      leased = true;
    } catch (error) {
      if (this.settings.unreachableWrites === 'refuse') {
        // A lease placed on one of the keys ends by itself; releasing it sooner is a courtesy.
        if (this.circuit.isUp) void Promise.all(keys.map((key) => this.generations.settle(key, lease.writer))).catch(() => undefined);
        throw new BackendUnavailableError(
          'The API key write was refused and nothing was written: the Redis cache could not be reached to hold back ' +
            'the copies other instances serve. Retry, on another instance or once Redis answers.',
          { cause: error instanceof RedisCacheFailure ? error : new RedisCacheFailure('The Redis cache failed.') },
        );
      }
    }
    if (!leased) {
      // 'replay': the write first, its invalidation kept until Redis answers (and a lease
      // placed on some of the keys ended with it).
      try {
        return await write();
      } finally {
        await this.release(hashes, keys, id, lease);
      }
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      await this.release(hashes, keys, id, lease);
      throw new BackendUnavailableError(
        `The API key write was refused and nothing was written: holding it back in the Redis cache took longer than ${this.settings.writeTimeoutMs} ms. Retry.`,
      );
    }
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    let pending: Promise<T>;
    try {
      pending = write();
    } catch (error) {
      pending = Promise.reject(error);
    }
    try {
      return await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true;
            reject(
              new BackendUnavailableError(
                `The primary store did not finish the API key write within ${this.settings.writeTimeoutMs} ms; it may still be applied: read the key to see.`,
              ),
            );
          }, left);
          timer.unref();
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (timedOut) {
        // The lease covers the write until it ends; once the primary answers, readers may
        // trust the cache again (after its new generation) sooner.
        pending.then(
          () => this.release(hashes, keys, id, lease),
          () => this.release(hashes, keys, id, lease),
        );
      } else {
        await this.release(hashes, keys, id, lease);
      }
    }
  }

  /** Ends a write's lease with a new generation on each key, and tells the hook. Never rejects. */
  private async release(hashes: readonly string[], keys: readonly RedisCacheKeys[], id: string, lease: WriteLease): Promise<void> {
    this.notify({ ids: [id], hashes: [...hashes] });
    await Promise.all(
      keys.map((key) => {
        this.forget(key.id);
        // Deferred, the lease still holds readers off until it ends; the replay ends it sooner.
        return this.generations.settleOrDefer(key, lease.writer);
      }),
    );
  }

  /**
   * Gives each key a new generation carrying `lease` (voiding any entry, including one
   * still on its way to Redis, and holding readers off the cache while the lease runs)
   * and deletes its entry. Resolves once Redis shows the lease, read back: cache-manager
   * resolves writes that the store failed. Leases of other writes in progress are kept.
   */
  private async place(keys: readonly RedisCacheKeys[], lease: WriteLease, deadline: number): Promise<void> {
    if (!this.circuit.isUp) {
      // Redis is away as far as this instance knows: no wait, and a probe is due anyway.
      this.circuit.probe();
      throw new RedisCacheFailure('The Redis cache is unavailable.');
    }
    await Promise.all(
      keys.map((key) => this.generations.serialized(key.id, async () => {
        for (let attempt = 0; attempt < MAX_LEASE_ATTEMPTS && Date.now() < deadline; attempt++) {
          // Writers of one key on other instances replaced each other's value: a random
          // pause, growing, lets one of them through per round.
          if (attempt > 0) await pause(randomInt(1, 2 + 4 * attempt));
          const before = await this.generations.read(key);
          const value = formatGeneration(newGenerationToken(), [...otherLiveLeases(before, Date.now(), lease.writer), lease]);
          await this.generations.write(key, value);
          const stored = await this.generations.read(key);
          // Ours, or a concurrent write's that carried ours on.
          if (stored === value || otherLiveLeases(stored, Date.now()).some((held) => held.writer === lease.writer)) return;
        }
        // Other instances' writes kept replacing it: contention, not an outage, so the circuit stays.
        throw new RedisCacheFailure('The Redis cache did not keep a write lease.');
      })),
    );
  }
}

/** How long a write lease lasts: the write's time, and the clock skew allowed between instances. */
export function leaseMsFor(writeTimeoutMs: number): number {
  return writeTimeoutMs + LEASE_MARGIN_MS;
}
