var __decorate = (this && this.__decorate) || function (decorators, target, key, desc) {
    var c = arguments.length, r = c < 3 ? target : desc === null ? desc = Object.getOwnPropertyDescriptor(target, key) : desc, d;
    if (typeof Reflect === "object" && typeof Reflect.decorate === "function") r = Reflect.decorate(decorators, target, key, desc);
    else for (var i = decorators.length - 1; i >= 0; i--) if (d = decorators[i]) r = (c < 3 ? d(r) : c > 3 ? d(target, key, r) : d(target, key)) || r;
    return c > 3 && r && Object.defineProperty(target, key, r), r;
};
var __metadata = (this && this.__metadata) || function (k, v) {
    if (typeof Reflect === "object" && typeof Reflect.metadata === "function") return Reflect.metadata(k, v);
};
var __param = (this && this.__param) || function (paramIndex, decorator) {
    return function (target, key) { decorator(target, key, paramIndex); }
};
/**
 * One app instance of the soak (bench/soak.ts starts two, each in its own process):
 * a Nest app over the production shape, the cached provider (L1 + Redis cache +
 * PostgreSQL through MikroORM, pub/sub invalidation) with fleet-wide usage writes.
 * It serves `GET /whoami` behind `ApiKeyGuard` and takes key operations (issue,
 * rotate, revoke) and memory readings from the driver over IPC.
 *
 * Environment (set by the driver): SOAK_DATABASE_URL, SOAK_NAMESPACE, SOAK_ADAPTER
 * (express or fastify), REDIS_URL.
 */
import 'reflect-metadata';
import { createKeyv } from '@keyv/redis';
import { MikroORM } from '@mikro-orm/postgresql';
import { Controller, Get, Module, UseGuards } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { createCache } from 'cache-manager';
import { ApiAuthModule, ApiKeyGuard, ApiKeyService, CurrentApiKey } from 'nestjs-api-auth';
import { ApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { createRedisTwoTierBackend, RedisUsageCoordinator } from 'nestjs-api-auth/redis';
import { createClient } from 'redis';
import { SOAK_PREFIX } from './soak-protocol.js';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
async function main() {
    const namespace = process.env.SOAK_NAMESPACE;
    const orm = await MikroORM.init({ clientUrl: process.env.SOAK_DATABASE_URL, entities: [ApiKeyEntity], debug: false, pool: { min: 2, max: 10 } });
    const primary = new MikroOrmBackend(orm);
    await primary.ensureSchema();
    const redis = createClient({ url: REDIS_URL, disableOfflineQueue: true });
    redis.on('error', () => undefined);
    await redis.connect();
    // Keyv's namespace must not start with the backend's namespace followed by ':'.
    const cache = createCache({ stores: [createKeyv(REDIS_URL, { namespace: `${namespace}-cache` })] });
    const backend = await createRedisTwoTierBackend({ redis, cache, primary, ttl: 5 * 60_000, namespace });
    let SoakController = class SoakController {
        whoami(id) {
            return { id };
        }
    };
    __decorate([
        Get('whoami'),
        UseGuards(ApiKeyGuard),
        __param(0, CurrentApiKey('id')),
        __metadata("design:type", Function),
        __metadata("design:paramtypes", [String]),
        __metadata("design:returntype", void 0)
    ], SoakController.prototype, "whoami", null);
    SoakController = __decorate([
        Controller()
    ], SoakController);
    let SoakModule = class SoakModule {
    };
    SoakModule = __decorate([
        Module({
            imports: [
                ApiAuthModule.forRoot({
                    backend,
                    prefix: SOAK_PREFIX,
                    // Often enough that usage writes happen all through the run.
                    usageIntervalMs: 5_000,
                    usageCoordinator: new RedisUsageCoordinator(redis, { namespace }),
                }),
            ],
            controllers: [SoakController],
        })
    ], SoakModule);
    const app = process.env.SOAK_ADAPTER === 'fastify'
        ? await NestFactory.create(SoakModule, new FastifyAdapter(), { logger: ['error', 'warn'] })
        : await NestFactory.create(SoakModule, { logger: ['error', 'warn'] });
    await app.listen(0, '127.0.0.1');
    const service = app.get(ApiKeyService);
    const gc = globalThis.gc;
    const handle = async (message) => {
        switch (message.type) {
            case 'issue': {
                const expiresAt = message.expiresInMs === undefined ? null : new Date(Date.now() + message.expiresInMs);
                const { key, apiKey } = await service.issue({ ownerId: `soak-${message.owner}`, name: 'soak', expiresAt });
                return { type: 'issued', key, id: apiKey.id, expiresAt: apiKey.expiresAt?.getTime() ?? null };
            }
            case 'rotate': {
                const { key, apiKey, previous } = await service.rotate(message.id, { gracePeriodMs: message.graceMs });
                return { type: 'rotated', key, id: apiKey.id, graceEnd: previous.expiresAt.getTime() };
            }
            case 'revoke':
                await service.revoke(message.id);
                return { type: 'revoked' };
            case 'memory':
                // Two full collections, so the reading is what is retained, not garbage.
                gc?.();
                gc?.();
                return { type: 'memory', ...process.memoryUsage(), collected: gc !== undefined };
            case 'stop':
                await app.close(); // closes the subscriber the cached provider opened
                await cache.disconnect().catch(() => undefined);
                await redis.quit().catch(() => undefined);
                await orm.close();
                return { type: 'stopped' };
        }
    };
    // Leave with the runner, whatever ends it (see bench/server.ts).
    process.on('disconnect', () => process.exit(1));
    process.on('message', (message) => {
        handle(message).then((reply) => {
            process.send({ ...reply, seq: message.seq });
            if (reply.type === 'stopped')
                process.exit(0);
        }, (error) => process.send({ type: 'error', message: error?.message ?? String(error), seq: message.seq }));
    });
    process.send({ type: 'ready', port: app.getHttpServer().address().port });
}
main().catch((error) => {
    console.error(error);
    process.exit(1);
});
