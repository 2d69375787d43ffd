import type { RedisClusterClient, RedisClusterNode } from './redis-client.types.js';

/**
 * Topology rediscovery for node-redis v5 cluster clients whose master died for good:
 * node-redis re-reads the topology only on `MOVED`/`ASK`, which a dead master never
 * sends (redis/node-redis#2806), so on every `node-reconnecting` this asks the client's
 * internal `_slots.rediscover()`, feature-detected, one at a time. Why and until when:
 * docs/redis-cluster.md, "Failover".
 */
export function watchClusterTopology(cluster: RedisClusterClient): boolean {
  if (watched.has(cluster)) return watched.get(cluster)!;
  const rediscover = internalRediscover(cluster);
  watched.set(cluster, rediscover !== undefined);
  if (!rediscover) return false;
  let running = false;
  cluster.on('node-reconnecting', () => {
    if (running || !cluster.isOpen) return;
    const start = liveNodeClient(cluster);
    if (!start) return;
    running = true;
    // A failed rediscovery (every node down) is retried on the next reconnect attempt.
    rediscover(start)
      .catch(() => undefined)
      .finally(() => {
        running = false;
      });
  });
  return true;
}

/** Cluster clients already watched, and whether their rediscovery could be hooked. */
const watched = new WeakMap<object, boolean>();

interface InternalSlots {
  rediscover(startWith: unknown): Promise<unknown>;
}

/** node-redis 5's `cluster._slots.rediscover`, bound, or `undefined` when this client has none. */
function internalRediscover(cluster: RedisClusterClient): ((startWith: unknown) => Promise<unknown>) | undefined {
  const slots = (cluster as unknown as { _slots?: Partial<InternalSlots> })._slots;
  const fn = slots?.rediscover;
  return typeof fn === 'function' ? (startWith) => fn.call(slots, startWith) : undefined;
}

/**
 * A node connection that is up, for the rediscovery to ask first (it falls back to the
 * root nodes when that one fails).
 */
function liveNodeClient(cluster: RedisClusterClient): unknown {
  const nodes: readonly RedisClusterNode[] = [...cluster.masters, ...cluster.replicas];
  let any: unknown;
  for (const node of nodes) {
    const client = node.client as { isReady?: boolean; options?: unknown } | undefined;
    if (!client?.options) continue;
    if (client.isReady) return client;
    any ??= client;
  }
  return any;
}
