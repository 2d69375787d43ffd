// A fresh consumer's app, run from a directory where only the packed tarball and the
// registry's current packages are installed. `nestjs` wires MikroORM through
// @mikro-orm/nestjs (MikroORM 7); `provider` through a plain provider (MikroORM 6 on
// Node 20). It must verify a key it issued and then exit by itself: anything left
// open after app.close() keeps the process alive and the caller's timeout fails it.
import 'reflect-metadata';
import { Global, Inject, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MikroORM, PostgreSqlDriver } from '@mikro-orm/postgresql';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';

const [wiring] = process.argv.slice(2);
const config = { clientUrl: process.env.DATABASE_URL, entities: [ApiKeyEntity], allowGlobalContext: false };

async function ormModule() {
  if (wiring === 'nestjs') {
    const { MikroOrmModule } = await import('@mikro-orm/nestjs');
    return MikroOrmModule.forRootAsync({ driver: PostgreSqlDriver, useFactory: () => config });
  }
  // The plain-provider wiring: the app opens the ORM, so the app closes it.
  class OrmModule {
    constructor(orm) {
      this.orm = orm;
    }
    async onApplicationShutdown() {
      await this.orm.close();
    }
  }
  Inject(MikroORM)(OrmModule, undefined, 0);
  Module({ providers: [{ provide: MikroORM, useFactory: () => MikroORM.init(config) }], exports: [MikroORM] })(OrmModule);
  Global()(OrmModule);
  return OrmModule;
}

class AppModule {}
Module({
  imports: [
    await ormModule(),
    ApiAuthModule.forRootAsync({
      inject: [MikroORM],
      useFactory: (orm) => ({ prefix: 'fc_', backend: new MikroOrmBackend(orm, { ensureSchema: true }) }),
    }),
  ],
})(AppModule);

const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
const service = app.get(ApiKeyService);
const { key, apiKey } = await service.issue({ ownerId: 'fresh-consumer', name: 'k' });
const verified = await service.verify(key);
if (verified?.id !== apiKey.id) throw new Error('the issued key did not verify');
await service.revoke(apiKey.id);
if ((await service.verify(key)) !== null) throw new Error('the revoked key still verifies');
await app.close();
// Written to stderr: the lint rule keeps stdout for what a program is asked for.
console.warn(`consumer (${wiring}): issued, verified, revoked, closed`);
