import { EventEmitter } from 'node:events';
import type { RedisClusterClient, RedisClusterNode } from './redis-client.types.js';
import type { RedisInvalidationSubscriber } from './redis-client.types.js';

/** The node-redis client calls the roaming subscriber makes on its per-node connection. */
interface NodeConnection {
  readonly isOpen: boolean;
  readonly options?: { socket?: object };
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): unknown;
  on(event: string, listener: (...args: any[]) => void): unknown;
  duplicate(overrides: object): NodeConnection;
}

/** Longest pause between two rounds over every node while none accepts the subscription. */
const MAX_RETRY_MS = 1_000;

/**
 * The invalidation bus's subscriber on a Redis Cluster: one classic `SUBSCRIBE` on one
 * node, on a connection of its own, moving to another node when that one fails and then
 * emitting `ready` so the bus clears its L1
 * (docs/internals.md#the-invalidation-bus-on-a-redis-cluster-redis-invalidationcluster-subscriberts).
 */
export class ClusterInvalidationSubscriber extends EventEmitter implements RedisInvalidationSubscriber {
  private connection: NodeConnection | undefined;
  private channel: string | undefined;
  private listener: ((message: string, channel: string) => void) | undefined;
  private closed = false;
  private moving = false;
  private lastAddress: string | undefined;

  constructor(
    private readonly cluster: RedisClusterClient,
    private readonly name: string,
  ) {
    super();
  }

  /** `true` until closed, as node-redis's `isOpen` stays true while it reconnects. */
  get isOpen(): boolean {
    return !this.closed;
  }

  /** `host:port` of the node the subscription is on, if any. */
  get address(): string | undefined {
    return this.connection ? this.lastAddress : undefined;
  }

  async connect(): Promise<void> {
    if (!(await this.attach())) throw new Error('nestjs-api-auth: no Redis Cluster node accepted the invalidation subscriber.');
  }

  async subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void> {
    this.channel = channel;
    this.listener = listener;
    const connection = this.connection;
    if (!connection) throw new Error('nestjs-api-auth: the invalidation subscriber is not connected.');
    await connection.subscribe(channel, listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    this.connection = undefined;
    if (connection?.isOpen) await connection.close().catch(() => connection.destroy());
  }

  destroy(): void {
    this.closed = true;
    const connection = this.connection;
    this.connection = undefined;
    if (connection?.isOpen) connection.destroy();
  }

  /** Connects (and, once the bus has subscribed, subscribes) to one node; tries each once. */
  private async attach(): Promise<boolean> {
    const base = await this.baseConnection();
    const nodes = this.candidates();
    for (const node of nodes) {
      if (this.closed) return false;
      const address = `${node.host}:${node.port}`;
      const connection = base.duplicate({
        name: this.name,
        readonly: false,
        // This class moves to another node itself; node-redis must not retry a dead one.
        socket: { ...base.options?.socket, host: node.host, port: node.port, reconnectStrategy: false },
      });
      let lost = false;
      const onLost = (error?: unknown) => {
        if (lost || this.connection !== connection) return;
        lost = true;
        this.connection = undefined;
        if (connection.isOpen) connection.destroy();
        if (this.closed) return;
        this.emit('error', error instanceof Error ? error : new Error(`lost the subscription on ${address}`));
        this.emit('reconnecting');
        void this.move();
      };
      connection.on('error', onLost);
      connection.on('end', () => onLost());
      try {
        await connection.connect();
        if (this.channel && this.listener) await connection.subscribe(this.channel, this.listener);
      } catch {
        if (connection.isOpen) connection.destroy();
        continue;
      }
      if (this.closed) {
        connection.destroy();
        return false;
      }
      this.connection = connection;
      this.lastAddress = address;
      return true;
    }
    return false;
  }

  /** Rounds over the topology until a node takes the subscription, then `ready`. */
  private async move(): Promise<void> {
    if (this.moving) return;
    this.moving = true;
    try {
      for (let round = 0; !this.closed; round++) {
        if (await this.attach().catch(() => false)) {
          this.emit('ready');
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** round, MAX_RETRY_MS)).unref());
      }
    } finally {
      this.moving = false;
    }
  }

  /**
   * Every node of the current topology, starting at a random one so a fleet's
   * subscribers spread out, and trying the node just lost last.
   */
  private candidates(): RedisClusterNode[] {
    const nodes = [...this.cluster.masters, ...this.cluster.replicas];
    const start = Math.floor(Math.random() * Math.max(1, nodes.length));
    const ordered = [...nodes.slice(start), ...nodes.slice(0, start)];
    return [
      ...ordered.filter((n) => `${n.host}:${n.port}` !== this.lastAddress),
      ...ordered.filter((n) => `${n.host}:${n.port}` === this.lastAddress),
    ];
  }

  /** A node connection of the cluster client, duplicated for each node: it carries the user's credentials and TLS settings. */
  private async baseConnection(): Promise<NodeConnection> {
    for (const node of [...this.cluster.masters, ...this.cluster.replicas]) {
      const client = node.client as NodeConnection | undefined;
      if (client && typeof client.duplicate === 'function') return client;
    }
    const master = this.cluster.masters[0];
    if (!master) throw new Error('nestjs-api-auth: the Redis Cluster client knows no node yet; connect it first.');
    return (await this.cluster.nodeClient(master)) as NodeConnection;
  }
}
