import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { AddressInfo } from 'node:net';
import { ApiKeyService } from 'nestjs-api-auth';
import { createApiAuthDocument } from 'nestjs-api-auth/swagger';
import { AppModule } from '../../sample/app.module.js';
import { CapturingLogger } from '../fixtures/log-capture.js';

export type Adapter = 'express' | 'fastify';

/** The sample app as the browser tests drive it, with its keys and its log. */
export interface RunningSample {
  app: INestApplication;
  base: string;
  apiKeys: ApiKeyService;
  /** Plaintext of an admin key (owner "ops"). */
  adminKey: string;
  /** Plaintext of a `reports:read` key (owner "demo-user"). */
  demoKey: string;
  logger: CapturingLogger;
  close(): Promise<void>;
}

/**
 * The sample's AppModule (in-memory store, global guard, routes with the console) on
 * the chosen adapter, plus Swagger UI at /docs built with `nestjs-api-auth/swagger`, as
 * the README tells a user to set it up. Listens on a free port on 127.0.0.1.
 */
export async function startSample(adapter: Adapter): Promise<RunningSample> {
  const logger = new CapturingLogger();
  const app =
    adapter === 'fastify'
      ? await NestFactory.create(AppModule, new FastifyAdapter(), { logger })
      : await NestFactory.create(AppModule, { logger });
  const document = createApiAuthDocument(app, new DocumentBuilder().setTitle('Sample').build());
  SwaggerModule.setup('docs', app, document);
  await app.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  const apiKeys = app.get(ApiKeyService);
  const { key: adminKey } = await apiKeys.issue({ ownerId: 'ops', name: 'console admin', scopes: ['api-keys:admin'] });
  const { key: demoKey } = await apiKeys.issue({ ownerId: 'demo-user', name: 'demo', scopes: ['reports:read'] });
  return { app, base, apiKeys, adminKey, demoKey, logger, close: () => app.close() };
}
