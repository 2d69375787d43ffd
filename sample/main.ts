import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { ApiKeyService } from 'nestjs-api-auth';
import { AppModule } from './app.module.js';

async function bootstrap() {
  const adapter = process.env.HTTP_ADAPTER === 'fastify' ? new FastifyAdapter() : undefined;
  const app = adapter ? await NestFactory.create(AppModule, adapter) : await NestFactory.create(AppModule);
  app.enableShutdownHooks();
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port, '127.0.0.1');
  const base = `http://127.0.0.1:${port}`;

  // With the in-memory store nothing survives a restart, so the sample mints a demo
  // key at start-up to have something to call with. A real app issues keys through
  // ApiKeyService or the management routes, and never prints them.
  if ((process.env.API_AUTH_BACKEND ?? 'memory') === 'memory' || process.env.SAMPLE_DEMO_KEY === '1') {
    const { key } = await app.get(ApiKeyService).issue({
      ownerId: 'demo-user',
      name: 'sample demo key',
      scopes: ['reports:read'],
    });
    console.log(`
nestjs-api-auth sample listening on ${base}

Demo key for owner "demo-user" (shown once):
  ${key}

Try:
  curl -i ${base}/health
  curl -i ${base}/hello
  curl -i -H 'X-API-Key: ${key}' ${base}/hello
  curl -i -H 'Authorization: Bearer ${key}' ${base}/reports
`);
  } else {
    console.log(`nestjs-api-auth sample listening on ${base}`);
  }
}

void bootstrap();
