import KeyvRedis from '@keyv/redis';
import { CACHE_MANAGER, CacheModule } from '@nestjs/cache-manager';
import { Inject, Module, type INestApplication, type OnApplicationShutdown } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import type { Cache } from 'cache-manager';
import request from 'supertest';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { API_KEY_BACKEND, ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { createRedisTwoTierBackend, RedisTwoTierBackend } from 'nestjs-api-auth/redis';
import { bootApp, type Adapter } from '../fixtures/app.js';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { connectRedis, deleteNamespace, REDIS_URL, uniqueNamespace } from '../fixtures/redis.js';
import { pollUntil } from '../fixtures/wait-for.js';

type Redis = ReturnType<typeof createClient>;
const REDIS = Symbol('REDIS');
/**
 * The instances' L1 TTL: far beyond any wait here, so an instance that stops accepting a
 * key it cached can only have heard the invalidation. How soon it hears it is measured
 * by `npm run bench:propagation`, not by these tests.
 */
const LONG_L1_TTL_MS = 600_000;

/**
 * One instance wired as the docs show: the app opens the ORM and the Redis client
 * (and closes them), `CacheModule` gives the cache, and the factory builds the cached
 * provider from them inside `forRootAsync`.
 */
function appModules(databaseUrl: string, namespace: string) {
  @Module({
    providers: [
      { provide: MikroORM, useFactory: () => initOrm(databaseUrl) },
      {
        provide: REDIS,
        useFactory: async (): Promise<Redis> => {
          const client = createClient({ url: REDIS_URL, disableOfflineQueue: true });
          client.on('error', () => undefined);
          await client.connect();
          return client;
        },
      },
    ],
    exports: [MikroORM, REDIS],
  })
  class InfraModule implements OnApplicationShutdown {
    constructor(
      @Inject(MikroORM) private readonly orm: MikroORM,
      @Inject(REDIS) private readonly redis: Redis,
    ) {}

    async onApplicationShutdown() {
      await this.redis.close();
      await this.orm.close();
    }
  }

  return [
    ApiAuthModule.forRootAsync({
      imports: [
        InfraModule,
        CacheModule.registerAsync({ useFactory: () => ({ stores: [new KeyvRedis(REDIS_URL)], namespace: `${namespace}-cache` }) }),
      ],
      inject: [MikroORM, REDIS, CACHE_MANAGER],
      useFactory: async (orm: MikroORM, redis: Redis, cache: Cache) => ({
        backend: await createRedisTwoTierBackend({
          redis,
          cache,
          primary: new MikroOrmBackend(orm),
          ttl: 5 * 60_000,
          namespace,
          l1: { ttl: LONG_L1_TTL_MS },
        }),
        prefix: 'cpe_',
      }),
    }),
  ];
}

async function subscribers(admin: Awaited<ReturnType<typeof connectRedis>>, channel: string): Promise<number> {
  const [, count] = (await admin.sendCommand(['PUBSUB', 'NUMSUB', channel])) as [string, number];
  return Number(count);
}

describe('two Nest apps (express + fastify) on the cached provider over PostgreSQL', () => {
  const namespace = uniqueNamespace('cached-provider-e2e').slice(0, -1);
  let db: TestDatabase;
  let admin: Awaited<ReturnType<typeof connectRedis>>;
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('cached_provider');
    admin = await connectRedis();
    // The schema, once, as a migration would create it.
    const orm = await initOrm(db.url);
    await new MikroOrmBackend(orm).ensureSchema();
    await orm.close();
    for (const adapter of ['express', 'fastify'] as Adapter[]) apps.push(await bootApp(adapter, appModules(db.url, namespace)));
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    await deleteNamespace(admin, namespace);
    await admin?.close();
    await db?.drop();
  });

  it('a key revoked on one instance gets 401 from the other, whose L1 would keep it for minutes', async () => {
    const [a, b] = apps as [INestApplication, INestApplication];
    expect(a.get(API_KEY_BACKEND)).toBeInstanceOf(RedisTwoTierBackend);
    const { key, apiKey } = await a.get(ApiKeyService).issue({ ownerId: 'owner-1', name: 'n' });
    for (let i = 0; i < 3; i++) {
      const res = await request(b.getHttpServer()).get('/t/me').set('X-API-Key', key).expect(200);
      expect(res.body.ownerId).toBe('owner-1');
    }

    await a.get(ApiKeyService).revoke(apiKey.id);
    const statuses: number[] = [];
    await pollUntil(async () => {
      statuses.push((await request(b.getHttpServer()).get('/t/me').set('X-API-Key', key)).status);
      return statuses.at(-1) !== 200;
    }, 'b answering the revoked key with 401');
    // The first answer that is not a 200 is the refusal.
    expect(statuses.at(-1)).toBe(401);
    const res = await request(b.getHttpServer()).get('/t/me').set('X-API-Key', key).expect(401);
    expect(res.body.code).toBe('revoked_api_key');
    expect(await db.query('select revoked_at is not null as revoked from api_keys where id = ?', [apiKey.id])).toEqual([
      { revoked: true },
    ]);
  });

  it('app.close() ends the subscriber the provider opened, and the app closes its own client', async () => {
    const channel = `${namespace}:invalidate`;
    expect(await subscribers(admin, channel)).toBe(2);
    const [first] = apps.splice(0, 1);
    await first!.close();
    await pollUntil(async () => (await subscribers(admin, channel)) === 1, 'one subscriber left');
    expect(await subscribers(admin, channel)).toBe(1);
  });
});

describe('the sample\'s cached backend (API_AUTH_BACKEND=cached) is the cached provider', () => {
  const saved = { url: process.env.DATABASE_URL, ns: process.env.REDIS_NAMESPACE };
  const namespace = uniqueNamespace('cached-provider-sample');
  let db: TestDatabase;
  let admin: Awaited<ReturnType<typeof connectRedis>>;

  beforeAll(async () => {
    db = await createTestDatabase('cached_provider_sample');
    admin = await connectRedis();
    process.env.DATABASE_URL = db.url;
    process.env.REDIS_NAMESPACE = namespace;
  });

  afterAll(async () => {
    for (const [name, value] of [
      ['DATABASE_URL', saved.url],
      ['REDIS_NAMESPACE', saved.ns],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await deleteNamespace(admin, namespace);
    await admin?.close();
    await db?.drop();
  });

  it('two sample instances: a revoke on one is refused by the other; close() ends what it opened', async () => {
    const { createCachedBackend } = await import('../../sample/backends/cached.backend.js');
    const { ApiKeyService: Service } = await import('nestjs-api-auth');
    const { resolveApiAuthOptions } = await import('nestjs-api-auth/testing');
    // The sample's L1 keeps a key 1 s by the clock it read at construction: with Date
    // stopped, that second never passes, so only the invalidation message can end two's
    // entry (how soon it does is measured by `npm run bench:propagation`).
    vi.useFakeTimers({ toFake: ['Date'] });
    const one = await createCachedBackend();
    const two = await createCachedBackend();
    try {
      expect(one.backend).toBeInstanceOf(RedisTwoTierBackend);
      const a = new Service(resolveApiAuthOptions({ backend: one.backend, prefix: 'smp_', trackUsage: false }));
      const b = new Service(resolveApiAuthOptions({ backend: two.backend, prefix: 'smp_', trackUsage: false }));
      const { key, apiKey } = await a.issue({ ownerId: 'o', name: 'n' });
      expect((await b.authenticate(key)).ok).toBe(true);
      expect((await b.authenticate(key)).ok).toBe(true);
      await a.revoke(apiKey.id);
      await pollUntil(async () => !(await b.authenticate(key)).ok, 'the other sample instance refusing the revoked key');
      expect(await b.authenticate(key)).toEqual({ ok: false, code: 'revoked_api_key' });
    } finally {
      await one.close();
      await two.close();
      vi.useRealTimers();
    }
    const sessions = await db.query<{ n: number }>(
      'select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
    );
    expect(sessions[0]!.n).toBe(0);
  });
});
