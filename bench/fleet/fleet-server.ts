/**
 * One app instance of the fleet soak, run by the driver inside its own network
 * namespace (`ip netns exec`). The production shape on a Redis Cluster: the cached
 * provider (L1 + Redis cache through `@keyv/redis` + PostgreSQL through MikroORM, with
 * the invalidation bus), `RedisRateLimiter` and `RedisUsageCoordinator`, all on one
 * `createCluster()` client. It serves `GET /whoami` behind `ApiKeyGuard`, and key
 * operations on `/control/*` for the driver: those have no guard, which is fine only
 * because the instance is reachable on the soak's private bridge alone.
 *
 * Environment (set by the driver): FLEET_INDEX, FLEET_LISTEN (address), FLEET_PORT,
 * FLEET_ADAPTER (express or fastify), FLEET_DATABASE_URL, FLEET_REDIS_NODES (host:port,
 * comma-separated), FLEET_NAMESPACE, FLEET_USAGE_INTERVAL_MS. It prints `ready` once it
 * listens, and reports log lines by message on `GET /control/logs` rather than printing
 * them (the faults make the library warn, on purpose), and its usage writes on
 * `GET /control/usage-attempts`.
 */
import 'reflect-metadata';
import KeyvRedis from '@keyv/redis';
import { MikroORM } from '@mikro-orm/postgresql';
import { Body, ConsoleLogger, Controller, Get, Logger, Module, Post, ServiceUnavailableException, UseGuards } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { createCache } from 'cache-manager';
import { Keyv } from 'keyv';
import { ApiAuthModule, ApiKeyGuard, ApiKeyService, BackendUnavailableError, CurrentApiKey } from 'nestjs-api-auth';
import { ApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { createRedisTwoTierBackend, RedisRateLimiter, RedisUsageCoordinator } from 'nestjs-api-auth/redis';
import { createCluster } from 'redis';
import { FLEET_PREFIX, type IssueRequest, type IssueReply, type RotateReply } from './fleet-protocol.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`fleet-server: ${name} is not set`);
  return value;
};

/** Counts log lines by level and message; prints none, so faults do not flood the terminal. */
class CountingLogger extends ConsoleLogger {
  readonly lines = new Map<string, number>();
  private note(level: string, message: unknown): void {
    const text = `${level} ${String(message instanceof Error ? message.message : message).slice(0, 160)}`;
    this.lines.set(text, (this.lines.get(text) ?? 0) + 1);
  }
  override error(message: unknown): void {
    this.note('ERROR', message);
  }
  override warn(message: unknown): void {
    this.note('WARN', message);
  }
  override log(): void {}
}

/**
 * A key operation the store or cache could not take answers 503, as the management
 * routes answer it (their exception filter): the driver retries it on another instance.
 */
async function unavailableAs503<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof BackendUnavailableError) throw new ServiceUnavailableException(error.message);
    throw error;
  }
}

async function main(): Promise<void> {
  const namespace = env('FLEET_NAMESPACE');
  const logger = new CountingLogger();
  // The library's parts log through Nest's static Logger, also before the app exists.
  Logger.overrideLogger(logger);
  const orm = await MikroORM.init({ clientUrl: env('FLEET_DATABASE_URL'), entities: [ApiKeyEntity], debug: false, pool: { min: 1, max: 4 } });
  const primary = new MikroOrmBackend(orm);
  // Every usage write this instance sends to PostgreSQL, successful or not: what the
  // usage coordinator saves. (The database's trigger sees only the successful ones.)
  const usageAttempts: [string, number][] = [];
  const recordUsage = primary.recordUsage.bind(primary);
  primary.recordUsage = (id, usedAt, staleBefore) => {
    if (usageAttempts.length < 1_000_000) usageAttempts.push([id, Date.now()]);
    return recordUsage(id, usedAt, staleBefore);
  };
  const cluster = createCluster({
    rootNodes: env('FLEET_REDIS_NODES')
      .split(',')
      .map((node) => ({ url: `redis://${node}` })),
    // No offline queue: a command to a node that is away fails at once, and the parts'
    // own timeouts decide the rest. A short back-off, so a healed node is found quickly.
    defaults: { disableOfflineQueue: true, socket: { connectTimeout: 1_000, reconnectStrategy: (n: number) => Math.min(50 * 2 ** n, 500) } },
  });
  // Without a listener node-redis rethrows node errors as uncaught exceptions.
  cluster.on('error', () => undefined);
  await cluster.connect();
  // Keyv's namespace must not start with the backend's namespace followed by ':' (docs/redis-cluster.md).
  const cache = createCache({ stores: [new Keyv({ store: new KeyvRedis(cluster as never), namespace: `${namespace}-kv` })] });
  const backend = await createRedisTwoTierBackend({ redis: cluster, cache, primary, ttl: 5 * 60_000, namespace, logger });

  @Controller()
  class FleetController {
    constructor(private readonly service: ApiKeyService) {}

    @Get('whoami')
    @UseGuards(ApiKeyGuard)
    whoami(@CurrentApiKey('id') id: string) {
      return { id };
    }

    @Post('control/issue')
    async issue(@Body() body: IssueRequest): Promise<IssueReply> {
      const policy = body.limit === undefined ? undefined : { rateLimits: [{ name: 'soak', limit: body.limit, windowMs: body.windowMs! }] };
      const { key, apiKey } = await unavailableAs503(() => this.service.issue({ ownerId: `fleet-${body.owner}`, name: 'soak', policy }));
      return { key, id: apiKey.id };
    }

    @Post('control/rotate')
    async rotate(@Body() body: { id: string; graceMs: number }): Promise<RotateReply> {
      const { key, apiKey, previous } = await unavailableAs503(() => this.service.rotate(body.id, { gracePeriodMs: body.graceMs }));
      return { key, id: apiKey.id, graceEnd: previous.expiresAt!.getTime() };
    }

    @Post('control/revoke')
    async revoke(@Body() body: { id: string }): Promise<{ ok: true }> {
      await unavailableAs503(() => this.service.revoke(body.id));
      return { ok: true };
    }

    @Get('control/usage-attempts')
    attempts(): [string, number][] {
      return usageAttempts;
    }

    @Get('control/logs')
    logs(): Record<string, number> {
      return Object.fromEntries(logger.lines);
    }
  }

  @Module({
    imports: [
      ApiAuthModule.forRoot({
        backend,
        prefix: FLEET_PREFIX,
        usageIntervalMs: Number(env('FLEET_USAGE_INTERVAL_MS')),
        usageCoordinator: new RedisUsageCoordinator(cluster, { namespace }),
        rateLimiter: new RedisRateLimiter(cluster, { namespace: `${namespace}:limits:` }),
      }),
    ],
    controllers: [FleetController],
  })
  class FleetModule {}

  const app =
    env('FLEET_ADAPTER') === 'fastify'
      ? await NestFactory.create(FleetModule, new FastifyAdapter(), { logger })
      : await NestFactory.create(FleetModule, { logger });
  await app.listen(Number(env('FLEET_PORT')), env('FLEET_LISTEN'));
  const close = async () => {
    await app.close(); // closes the subscriber the cached provider opened
    await cache.disconnect().catch(() => undefined);
    cluster.destroy();
    await orm.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void close());
  console.log('ready');
}

main().catch((error: unknown) => {
  console.error(`fleet-server ${process.env.FLEET_INDEX}:`, error);
  process.exit(1);
});
