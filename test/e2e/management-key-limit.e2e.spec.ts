import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, MemoryBackend, type ApiKeyBackend } from 'nestjs-api-auth';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { ADAPTERS, bootApp, type Adapter } from '../fixtures/app.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';

// Real Redis, one namespace for the file (a sub-namespace per app), removed afterwards.
let redis: Awaited<ReturnType<typeof connectRedis>>;
const namespace = uniqueNamespace('key-limit');
let apps = 0;
/** The stores these checks run on; adding one is one line. */
const STORES: Array<[string, () => ApiKeyBackend]> = [
  ['memory', () => new MemoryBackend()],
  ['redis', () => new RedisBackend(redis, { namespace: `${namespace}${++apps}:` })],
];
const CASES = STORES.flatMap(([store, make]) => ADAPTERS.map((adapter) => [adapter, store, make] as [Adapter, string, () => ApiKeyBackend]));
const LIMIT = 4;

beforeAll(async () => {
  redis = await connectRedis();
});
afterAll(async () => {
  await deleteNamespace(redis, namespace);
  await redis.close();
});

describe.each(CASES)('maxKeysPerOwner over %s on the %s backend', (adapter, _store, makeBackend) => {
  let app: INestApplication;
  let service: ApiKeyService;

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'lim_', backend: makeBackend(), maxKeysPerOwner: LIMIT, routes: true })], {
      controllers: [],
    });
    service = app.get(ApiKeyService);
  });
  afterAll(() => app?.close());

  it('a self-service key mints up to the limit, then gets 409 key_limit_reached for issue and rotate', async () => {
    const self = await service.issue({ ownerId: 'o', name: 'self', scopes: ['api-keys:self', 'r'] });
    const http = () => request(app.getHttpServer());
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 2; i++) {
      statuses.push((await http().post('/api-keys').set('X-API-Key', self.key).send({ name: `m${i}`, scopes: ['r'] })).status);
    }
    expect(statuses).toEqual([201, 201, 201, 409, 409, 409]);
    const refused = await http().post('/api-keys').set('X-API-Key', self.key).send({ name: 'more', scopes: ['r'] });
    expect(refused.body).toEqual({
      statusCode: 409,
      error: 'Conflict',
      code: 'key_limit_reached',
      message: expect.stringContaining(`${LIMIT} API keys`),
    });
    const rotate = await http().post(`/api-keys/${self.apiKey.id}/rotate`).set('X-API-Key', self.key).send({});
    expect(rotate.status).toBe(409);
    expect(rotate.body.code).toBe('key_limit_reached');
    expect(await service.countByOwner('o')).toBe(LIMIT);
    // Still usable: the caller's key was not touched by the refused rotation.
    expect((await service.get(self.apiKey.id))?.expiresAt).toBeNull();
  });
});
