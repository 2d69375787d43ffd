import type { RedisClusterClient, RedisCommandClient } from './redis-client.types.js';

export type { RedisClusterClient, RedisClusterNode } from './redis-client.types.js';
import { watchClusterTopology } from './redis-cluster.topology.js';

/** Every Redis part of the library takes either: a standalone client or a cluster client. */
export type RedisClient = RedisCommandClient | RedisClusterClient;

/** A standalone-shaped client: `sendCommand(args)`, and `isReady` when the client knows it. */
export interface RedisCommandClientWithState extends RedisCommandClient {
  readonly isReady?: boolean;
}

/** Whether `client` is a node-redis cluster client (it lists its masters and replicas). */
export function isRedisCluster(client: unknown): client is RedisClusterClient {
  const c = client as Partial<RedisClusterClient> | null | undefined;
  return (
    typeof c === 'object' && c !== null && typeof c.sendCommand === 'function' && Array.isArray(c.masters) && Array.isArray(c.replicas)
  );
}

/**
 * The one command path of every Redis part. A standalone client is returned as it is
 * (no extra call on the hot path); a cluster client is wrapped so that `sendCommand(args)`
 * routes each command to the master of its first key's slot, and the wrapper also starts
 * the topology watchdog (see `redis-cluster.topology`).
 *
 * Reads go to masters (`isReadonly` is never set): a replica may still hold a key that
 * its master has revoked.
 */
export function commandClient(client: RedisClient, of: string): RedisCommandClientWithState {
  if (isRedisCluster(client)) {
    watchClusterTopology(client);
    return new ClusterCommandClient(client);
  }
  if (typeof (client as Partial<RedisCommandClient> | undefined)?.sendCommand !== 'function') {
    throw new Error(`${of}: the client must be a node-redis client or cluster client (or have a sendCommand(args) method).`);
  }
  return client;
}

/**
 * Sends `args` on the connection that `key`'s commands use: on a cluster, the master of
 * its slot (for `WAIT`, which names no key but must follow the write it waits for).
 */
export function sendCommandForKey(client: RedisCommandClient, key: string, args: string[]): Promise<unknown> {
  return client instanceof ClusterCommandClient ? client.cluster.sendCommand(key, false, args) : client.sendCommand(args);
}

/** A cluster client seen through the standalone `sendCommand(args)` shape. */
class ClusterCommandClient implements RedisCommandClientWithState {
  constructor(readonly cluster: RedisClusterClient) {}

  /** The cluster client has no `isReady`; `isOpen` is what says it is usable. */
  get isReady(): boolean {
    return this.cluster.isOpen;
  }

  sendCommand(args: string[]): Promise<unknown> {
    return this.cluster.sendCommand(firstKeyOf(args), false, args);
  }
}

/**
 * `PUBLISH` on a node whose connection is up. Classic pub/sub reaches every node from any
 * node, but node-redis sends a keyless command to a random node, which may be a dead
 * master still in its topology: the invalidation would be lost.
 */
export function publishOnCluster(cluster: RedisClusterClient, channel: string, message: string): Promise<unknown> {
  for (const node of [...cluster.masters, ...cluster.replicas]) {
    const client = node.client as { isReady?: boolean; publish?: (channel: string, message: string) => Promise<unknown> } | undefined;
    if (client?.isReady && typeof client.publish === 'function') return client.publish(channel, message);
  }
  return cluster.publish(channel, message);
}

/** Commands the library sends that name no key: any node may answer them. */
const KEYLESS = new Set(['PING', 'PUBLISH', 'TIME', 'INFO', 'ECHO', 'SCRIPT', 'CLUSTER', 'CLIENT', 'DBSIZE']);

/**
 * The key whose slot a command goes to: for `EVAL`/`EVALSHA`/`FCALL` the first declared
 * key (none when `numkeys` is 0), for keyless commands none (a random node), otherwise
 * the first argument.
 */
export function firstKeyOf(args: readonly string[]): string | undefined {
  const name = (args[0] ?? '').toUpperCase();
  if (name === 'EVALSHA' || name === 'EVAL' || name === 'EVALSHA_RO' || name === 'EVAL_RO' || name === 'FCALL' || name === 'FCALL_RO') {
    return Number(args[2]) > 0 ? args[3] : undefined;
  }
  return KEYLESS.has(name) ? undefined : args[1];
}

/** Whether Redis Cluster hashes `namespace`-prefixed keys by a tag inside it (a non-empty `{...}`). */
export function hasHashTag(namespace: string): boolean {
  const open = namespace.indexOf('{');
  const close = open < 0 ? -1 : namespace.indexOf('}', open + 1);
  return close > open + 1;
}
