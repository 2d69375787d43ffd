import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { RedisClusterClient } from 'nestjs-api-auth/redis';
import { createClient, createCluster, type RedisClusterOptions } from 'redis';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/redis-cluster.sh', import.meta.url));

/** First port of the test cluster that `scripts/redis-cluster.sh` starts (3 masters + 3 replicas). */
export const CLUSTER_BASE_PORT = Number(process.env.REDIS_CLUSTER_BASE_PORT ?? 7100);
/** The six node ports. */
export const CLUSTER_PORTS = [0, 1, 2, 3, 4, 5].map((i) => CLUSTER_BASE_PORT + i);
const DIR = process.env.REDIS_CLUSTER_DIR ?? `/tmp/nestjs-api-auth-cluster-${CLUSTER_BASE_PORT}`;

/** The test's view of a `createCluster()` client: what the library takes, plus closing it. */
export interface TestCluster extends RedisClusterClient {
  close(): Promise<unknown>;
  destroy(): unknown;
}

/** A plain client to one node. */
export interface TestNode {
  sendCommand(args: string[]): Promise<unknown>;
  destroy(): unknown;
}

/** A connected `createCluster()` client to the test cluster; close it with `close()`/`destroy()`. */
export async function connectCluster(options: Partial<RedisClusterOptions> = {}): Promise<TestCluster> {
  const cluster = createCluster({
    rootNodes: CLUSTER_PORTS.map((port) => ({ url: `redis://127.0.0.1:${port}` })),
    // Short back-off: a test that kills a node sees the others' answers, not a slow retry.
    defaults: { socket: { reconnectStrategy: (n: number) => Math.min(50 * 2 ** n, 500), connectTimeout: 1_000 } },
    ...options,
  });
  // Without a listener node-redis rethrows node errors as uncaught exceptions.
  cluster.on('error', () => undefined);
  await cluster.connect();
  const typed: TestCluster = cluster;
  return typed;
}

/** One plain (non-cluster) client to one node, for inspection. */
export async function connectNode(port: number): Promise<TestNode> {
  const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** The port of the master serving `key`'s slot, asked of a live node. */
export async function masterPortOf(key: string, askPort = CLUSTER_PORTS[0]!): Promise<number> {
  const node = await connectNode(askPort);
  try {
    const slot = Number(await node.sendCommand(['CLUSTER', 'KEYSLOT', key]));
    const shards = (await node.sendCommand(['CLUSTER', 'SLOTS'])) as [number, number, [string, number]][];
    const shard = shards.find(([from, to]) => slot >= from && slot <= to);
    if (!shard) throw new Error(`no master for slot ${slot}`);
    return Number(shard[2][1]);
  } finally {
    node.destroy();
  }
}

/** SIGKILLs one node (a crash, no shutdown); it stays dead until {@link restartNode}. */
export function killNode(port: number): void {
  process.kill(Number(readFileSync(`${DIR}/${port}/redis.pid`, 'utf8').trim()), 'SIGKILL');
}

/** Restarts a node {@link killNode} killed, with its cluster config: it rejoins as a replica. */
export async function restartNode(port: number): Promise<void> {
  await run(SCRIPT, ['node-start', String(port)]);
}

/** Resolves once every live node reports `cluster_state:ok` and `ports`' slots are served by a live master. */
export async function waitClusterOk(livePorts: number[], timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let ok = true;
    for (const port of livePorts) {
      const node = await connectNode(port).catch(() => undefined);
      const info = node ? String(await node.sendCommand(['CLUSTER', 'INFO']).catch(() => '')) : '';
      node?.destroy();
      if (!info.includes('cluster_state:ok')) ok = false;
    }
    if (ok) return;
    if (Date.now() > until) throw new Error('the test cluster did not become ok');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The ports of the nodes the cluster currently lists as masters. */
export async function masterPorts(askPort = CLUSTER_PORTS[0]!): Promise<number[]> {
  const node = await connectNode(askPort);
  try {
    const shards = (await node.sendCommand(['CLUSTER', 'SLOTS'])) as [number, number, [string, number]][];
    return [...new Set(shards.map((s) => Number(s[2][1])))];
  } finally {
    node.destroy();
  }
}

/** Whether the script reports the whole cluster healthy (6 nodes, 3 masters, replicas synced). */
async function clusterHealthy(): Promise<boolean> {
  return run(SCRIPT, ['status']).then(
    () => true,
    () => false,
  );
}

/**
 * Brings back a node a test killed and waits until the cluster is whole again, so the
 * next test file starts on a healthy cluster.
 */
export async function restoreNode(port: number, timeoutMs = 30_000): Promise<void> {
  const alive = await connectNode(port).then(
    (node) => (node.destroy(), true),
    () => false,
  );
  if (!alive) await restartNode(port);
  const until = Date.now() + timeoutMs;
  while (!(await clusterHealthy())) {
    if (Date.now() > until) throw new Error('the test cluster did not recover');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The port of the node holding a connection named `name`, or undefined. */
export async function nodeWithConnection(name: string, ports = CLUSTER_PORTS): Promise<number | undefined> {
  for (const port of ports) {
    const node = await connectNode(port).catch(() => undefined);
    if (!node) continue;
    const list = String(await node.sendCommand(['CLIENT', 'LIST']).catch(() => ''));
    node.destroy();
    if (list.split('\n').some((line) => line.includes(` name=${name} `))) return port;
  }
  return undefined;
}
