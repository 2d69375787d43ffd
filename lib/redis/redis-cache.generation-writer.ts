import { formatGeneration, newGenerationToken, otherLiveLeases } from './redis-cache.generation.js';
import { RedisCacheFailure, type RedisCacheCircuit } from './redis-cache.circuit.js';
import type { RedisCacheKeys } from './redis-cache.keys.js';
import type { RedisCacheManager, ResolvedRedisCacheOptions } from './redis-cache.options.js';

/**
 * How much longer a generation lives than any entry. Generations must outlast every
 * entry filled under an older one, including one whose write reached Redis late, and
 * the margin also absorbs clock skew between instances.
 */
const GENERATION_MARGIN_MS = 60_000;

/** What the generation writer needs from its owner. */
export interface RedisCacheGenerationWriterOptions {
  cache: RedisCacheManager;
  circuit: RedisCacheCircuit;
  /** The entries' lifetimes, which a generation must outlast. */
  settings: Pick<ResolvedRedisCacheOptions, 'ttl' | 'negativeTtl'>;
  /** How long a write lease lasts, which a generation must outlast too. */
  leaseMs: number;
}

/**
 * Replaces keys' generations in Redis, which voids their entries: one change at a time
 * per key on this instance, each verified by reading the generation back. The values
 * themselves are formatted by redis-cache.generation.ts.
 */
export class RedisCacheGenerationWriter {
  private readonly cache: RedisCacheManager;
  private readonly circuit: RedisCacheCircuit;
  private readonly ttlMs: number;
  /** Per cache id, the tail of the generation changes made here (see serialized). */
  private readonly queues = new Map<string, Promise<void>>();

  constructor(options: RedisCacheGenerationWriterOptions) {
    this.cache = options.cache;
    this.circuit = options.circuit;
    // Also longer than a lease: a generation that expired under a live lease would let
    // a fill that read the old generation count again.
    this.ttlMs = Math.max(options.settings.ttl, options.settings.negativeTtl, options.leaseMs) + GENERATION_MARGIN_MS;
  }

  /**
   * Runs the changes of one key's generation made here one after another: each reads
   * the generation, then replaces it, so two at once would drop each other's lease.
   * (Between instances the read back catches most of that; see the write leases.)
   */
  serialized<T>(id: string, task: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(id) ?? Promise.resolve()).then(task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(id, tail);
    void tail.then(() => {
      if (this.queues.get(id) === tail) this.queues.delete(id);
    });
    return run;
  }

  /** The key's generation value as Redis holds it (a write: it gets the write timeout). */
  async read(keys: RedisCacheKeys): Promise<unknown> {
    const [value] = await this.circuit.run(() => this.cache.mget([keys.generation]), 'write');
    return value;
  }

  /** Sets the key's generation and deletes its entry. Unverified: see {@link read}. */
  async write(keys: RedisCacheKeys, generation: string): Promise<void> {
    await this.circuit.run(
      () => Promise.all([this.cache.set(keys.generation, generation, this.ttlMs), this.cache.del(keys.entry)]),
      'write',
    );
  }

  /**
   * Replaces the key's generation (voiding any entry, including one still on its way
   * to Redis) and deletes the entry, keeping the leases of writes in progress except
   * `writer`'s own. Verified by reading the generation back, because cache-manager
   * resolves writes that the store failed.
   */
  settle(keys: RedisCacheKeys, writer?: string): Promise<void> {
    return this.serialized(keys.id, () => this.replace(keys, writer));
  }

  /**
   * Settles the key's generation, or, when Redis is out of reach, keeps the key for
   * the circuit to replay (and opens the circuit, so this instance reads the primary
   * until then). Never rejects.
   */
  async settleOrDefer(keys: RedisCacheKeys, writer?: string): Promise<void> {
    if (!this.circuit.isUp) {
      this.circuit.markPending(keys.id);
      return;
    }
    try {
      await this.settle(keys, writer);
    } catch (error) {
      this.circuit.trip(error);
      this.circuit.markPending(keys.id);
    }
  }

  private async replace(keys: RedisCacheKeys, writer: string | undefined): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      // Read after the primary write: a generation set from now on, ours or a concurrent
      // writer's, postdates that write, and so voids every entry that could miss it.
      // Requiring our own value back instead took concurrent writes to one key (two
      // instances updating it) for a lost write, and so for an outage.
      const before = await this.read(keys);
      const generation = formatGeneration(newGenerationToken(), otherLiveLeases(before, Date.now(), writer));
      await this.write(keys, generation);
      const stored = await this.read(keys);
      if (stored === generation || (typeof stored === 'string' && stored !== before)) return;
    }
    const failure = new RedisCacheFailure('The Redis cache did not keep an invalidation.');
    this.circuit.trip(failure);
    throw failure;
  }
}
