import type { RedisClusterClient, RedisClusterNode } from './redis-client.types.js';

/**
 * Topology rediscovery for node-redis v5 cluster clients whose master died for good.
 *
 * node-redis re-reads the topology only when a node answers `MOVED`/`ASK`. A master
 * that is dead never answers, so after its replica is promoted the client keeps
 * sending that shard's commands to the dead address ("The client is offline") until
 * something else triggers a rediscovery (redis/node-redis#2806). node-redis 5.12 has no
 * public way to ask for one; redis/node-redis#3223 (merged upstream) adds the cluster
 * option `topologyRefreshOnReconnectionAttemptStrategy`, which makes this watchdog
 * redundant but harmless.
 *
 * The watchdog asks for a rediscovery each time a node connection starts reconnecting,
 * through the client's internal `_slots.rediscover(startWith)`, feature-detected: when
 * it is missing (another client version), the watchdog does nothing. At most one
 * rediscovery runs at a time per cluster client; node-redis emits `node-reconnecting`
 * on every retry, so a rediscovery that ran before the failover is repeated by the next
 * retry.
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
