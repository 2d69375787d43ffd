import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiKeyService } from 'nestjs-api-auth';
import { AppModule } from './app.module.js';

/** The running sample, for tests that drive it (the docs walk-through test does). */
export interface SampleApp {
  app: INestApplication;
  base: string;
}

export async function bootstrap(port = Number(process.env.PORT ?? 3000)): Promise<SampleApp> {
  const adapter = process.env.HTTP_ADAPTER === 'fastify' ? new FastifyAdapter() : undefined;
  const app = adapter ? await NestFactory.create(AppModule, adapter) : await NestFactory.create(AppModule);
  app.enableShutdownHooks();
  await app.listen(port, '127.0.0.1');
  const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;

  // With the in-memory store nothing survives a restart, and the bootstrap command
  // (create-key) cannot reach this process's memory, so the sample mints an admin key
  // and a demo key at start-up. A real app bootstraps its first admin key with
  // create-key against its database, and never prints keys.
  if ((process.env.API_AUTH_BACKEND ?? 'memory') === 'memory' || process.env.SAMPLE_DEMO_KEY === '1') {
    const apiKeys = app.get(ApiKeyService);
    const { key: adminKey } = await apiKeys.issue({ ownerId: 'ops', name: 'sample admin key', scopes: ['api-keys:admin'] });
    const { key } = await apiKeys.issue({ ownerId: 'demo-user', name: 'sample demo key', scopes: ['reports:read'] });
    console.log(`
nestjs-api-auth sample listening on ${base}

Admin key for owner "ops" (manages keys at ${base}/api-keys; shown once):
  ${adminKey}

Demo key for owner "demo-user" (shown once):
  ${key}

Try:
  curl -i ${base}/health
  curl -i ${base}/hello
  curl -i -H 'X-API-Key: ${key}' ${base}/hello
  curl -i -H 'Authorization: Bearer ${key}' ${base}/reports
  curl -s -H 'X-API-Key: ${adminKey}' '${base}/api-keys?ownerId=demo-user'

The key-management walk-through: docs/management.md, "Walk-through with the sample".
`);
  } else {
    console.log(`nestjs-api-auth sample listening on ${base}`);
  }
  return { app, base };
}

// Run when started as a program, not when a test imports bootstrap(). Compared without
// the extension, so `node dist-sample/main` and `node dist-sample/main.js` both start it.
const withoutJs = (path: string) => resolve(path).replace(/\.js$/, '');
if (process.argv[1] && withoutJs(fileURLToPath(import.meta.url)) === withoutJs(process.argv[1])) void bootstrap();
