import { Controller, Get, type DynamicModule, type INestApplication, type Type } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { MikroORM, PostgreSqlDriver } from '@mikro-orm/postgresql';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { ApiKeyHealthIndicator } from 'nestjs-api-auth/terminus';
import { ADAPTERS, GuardedController, type Adapter } from '../../../test/fixtures/app.js';
import { CapturingLogger } from '../../../test/fixtures/log-capture.js';
import { createTestDatabase, type TestDatabase } from '../../../test/fixtures/postgres.js';

// The wiring a Nest user on MikroORM 7 writes: @mikro-orm/nestjs opens (and on shutdown
// closes) the ORM, and ApiAuthModule.forRootAsync takes it by injection.
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('compat_module');
});
afterAll(async () => {
  await db?.drop();
});

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly apiKeys: ApiKeyHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.apiKeys.checkBackend()]);
  }
}

/** Boots an app over `adapter` whose every log line (Terminus's too) goes to `logger`. */
async function boot(adapter: Adapter, imports: Array<DynamicModule | Type>, logger: CapturingLogger): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports,
    controllers: [GuardedController, HealthController],
    providers: [ApiKeyHealthIndicator],
  })
    .setLogger(logger)
    .compile();
  const app =
    adapter === 'fastify' ? moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter()) : moduleRef.createNestApplication();
  app.useLogger(logger);
  await app.init();
  if (adapter === 'fastify') await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  return app;
}

const sessions = async () =>
  (
    await db.query<{ n: number }>(
      'select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
    )
  )[0]!.n;

describe.each(ADAPTERS)('MikroOrmModule.forRootAsync feeding ApiAuthModule.forRootAsync over %s', (adapter) => {
  it('authenticates with keys stored through the injected MikroORM, reports health without warnings, and closes the ORM with the app', async () => {
    const logger = new CapturingLogger();
    const app = await boot(
      adapter,
      [
        MikroOrmModule.forRootAsync({
          driver: PostgreSqlDriver,
          useFactory: () => ({ clientUrl: db.url, entities: [ApiKeyEntity], allowGlobalContext: false }),
        }),
        ApiAuthModule.forRootAsync({
          inject: [MikroORM],
          useFactory: (orm: MikroORM) => ({ prefix: 'c7_', backend: new MikroOrmBackend(orm, { ensureSchema: true }) }),
        }),
        TerminusModule,
      ],
      logger,
    );
    try {
      const service = app.get(ApiKeyService);
      const { key, apiKey } = await service.issue({ ownerId: `owner-${adapter}`, name: 'k' });
      expect(await db.query('select id from api_keys where id = ?', [apiKey.id])).toEqual([{ id: apiKey.id }]);
      const me = await request(app.getHttpServer()).get('/t/me').set('X-API-Key', key).expect(200);
      expect(me.body.ownerId).toBe(`owner-${adapter}`);
      await service.revoke(apiKey.id);
      await request(app.getHttpServer()).get('/t/me').set('X-API-Key', key).expect(401);

      const health = await request(app.getHttpServer()).get('/health').expect(200);
      expect(health.body.details['api-keys'].status).toBe('up');
      expect(logger.lines.filter((line) => /deprecat/i.test(line))).toEqual([]);
      expect(await sessions()).toBeGreaterThan(0);
    } finally {
      await app.close();
    }
    expect(await sessions()).toBe(0);
  });
});
