/**
 * The faults the fleet soak injects, each touching only what soak-fleet.sh made:
 * - a partition of one instance from Redis: a blackhole route to the nodes' announced
 *   address inside that instance's namespace (packets to Redis vanish; the driver,
 *   PostgreSQL and the other instances stay reachable);
 * - added delay on one instance: its in-namespace proxy switched on (no `netem` here);
 * - a master failover: SIGKILL of one master of the soak's cluster, left dead, and the
 *   time until the cluster has promoted its replica.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { createClient } from 'redis';

const run = promisify(execFile);

export interface FaultConfig {
  /** Directory of soak-fleet.sh's pid files (and the cluster's, under `redis/`). */
  state: string;
  /** Namespace name prefix, `<prefix><index>`. */
  namespacePrefix: string;
  redisHost: string;
  redisPorts: readonly number[];
}

export class Faults {
  constructor(private readonly config: FaultConfig) {}

  /** Drops every packet instance `index` sends to Redis, until {@link heal}. */
  async partition(index: number): Promise<void> {
    await run('ip', ['-n', `${this.config.namespacePrefix}${index}`, 'route', 'add', 'blackhole', `${this.config.redisHost}/32`]);
  }

  async heal(index: number): Promise<void> {
    await run('ip', ['-n', `${this.config.namespacePrefix}${index}`, 'route', 'del', 'blackhole', `${this.config.redisHost}/32`]);
  }

  /** Switches the delayed instance's proxy on or off. */
  delay(on: boolean): void {
    process.kill(this.pid('delay-proxy.pid'), on ? 'SIGUSR1' : 'SIGUSR2');
  }

  /** SIGKILLs the master serving slot `slot` and resolves to its port; it stays dead. */
  async killMasterOf(slot: number): Promise<number> {
    const shards = await this.ask(this.config.redisPorts, ['CLUSTER', 'SLOTS']);
    const shard = (shards as [number, number, [string, number]][]).find(([from, to]) => slot >= from && slot <= to);
    if (!shard) throw new Error(`no master serves slot ${slot}`);
    const port = Number(shard[2][1]);
    process.kill(this.pid(`redis/${port}/redis.pid`), 'SIGKILL');
    return port;
  }

  /**
   * Resolves once every live node says `cluster_state:ok` and no slot is served by
   * `dead` any more: the replica has taken over.
   */
  async waitFailover(dead: number, timeoutMs = 60_000): Promise<void> {
    const live = this.config.redisPorts.filter((port) => port !== dead);
    const until = Date.now() + timeoutMs;
    for (;;) {
      let ok = true;
      for (const port of live) {
        const info = String(await this.ask([port], ['CLUSTER', 'INFO']).catch(() => ''));
        if (!info.includes('cluster_state:ok')) ok = false;
      }
      const shards = (await this.ask(live, ['CLUSTER', 'SLOTS']).catch(() => [])) as [number, number, [string, number]][];
      if (ok && shards.length > 0 && shards.every((shard) => Number(shard[2][1]) !== dead)) return;
      if (Date.now() > until) throw new Error(`the cluster did not fail over within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** One command to the first of `ports` that answers, over a plain connection. */
  private async ask(ports: readonly number[], command: string[]): Promise<unknown> {
    let last: unknown;
    for (const port of ports) {
      const client = createClient({ url: `redis://${this.config.redisHost}:${port}`, socket: { connectTimeout: 500, reconnectStrategy: false } });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return await client.sendCommand(command);
      } catch (error) {
        last = error;
      } finally {
        if (client.isOpen) client.destroy();
      }
    }
    throw last;
  }

  private pid(file: string): number {
    return Number(readFileSync(`${this.config.state}/${file}`, 'utf8').trim());
  }
}
