import { MikroORM } from '@mikro-orm/postgresql';
import { createCache } from 'cache-manager';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, CachedBackend, MemoryBackend, MemoryRateLimiter, withL1Cache } from 'nestjs-api-auth';
import { L1Cache } from 'nestjs-api-auth/backend';
import { ApiKeyEntity, createApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import {
  createRedisTwoTierBackend,
  RedisBackend,
  RedisCacheBackend,
  RedisInvalidationBus,
  RedisRateLimiter,
  RedisUsageCoordinator,
} from 'nestjs-api-auth/redis';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { assertKnownOptions, closestName } from '../../lib/options/assert-known-options.js';

const PEPPER = 'a-pepper-that-must-never-be-echoed';

/** The message `run` throws with; fails the test when it does not throw. */
function thrown(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected an error');
}

describe('assertKnownOptions', () => {
  const known = ['prefix', 'pepper', 'usageIntervalMs', 'timeoutMs'];

  it('names the unknown option and the closest known one', () => {
    expect(thrown(() => assertKnownOptions({ prefx: 'live_' }, known))).toBe(
      'nestjs-api-auth: unknown option "prefx" (did you mean "prefix"?)',
    );
    expect(thrown(() => assertKnownOptions({ usageIntervallMs: 0 }, known))).toContain('(did you mean "usageIntervalMs"?)');
    expect(thrown(() => assertKnownOptions({ usageIntervalMS: 0 }, known))).toContain('(did you mean "usageIntervalMs"?)');
    expect(thrown(() => assertKnownOptions({ timeout: 5 }, known))).toContain('(did you mean "timeoutMs"?)');
  });

  it('lists the known options when none is close', () => {
    expect(thrown(() => assertKnownOptions({ database: 'x' }, known))).toBe(
      'nestjs-api-auth: unknown option "database" (known options: prefix, pepper, usageIntervalMs, timeoutMs)',
    );
  });

  it('never echoes the value of the unknown option, which may be a secret', () => {
    const message = thrown(() => assertKnownOptions({ peper: PEPPER }, known));
    expect(message).toBe('nestjs-api-auth: unknown option "peper" (did you mean "pepper"?)');
    expect(message).not.toContain(PEPPER);
  });

  it('ignores keys set to undefined, as configuration spread from the environment has them', () => {
    expect(() => assertKnownOptions({ prefix: 'live_', pepperFromVault: undefined }, known)).not.toThrow();
  });

  it('ignores symbol keys and inherited properties', () => {
    const options = Object.create({ inherited: true }) as Record<string | symbol, unknown>;
    options[Symbol('tag')] = 1;
    options.prefix = 'live_';
    expect(() => assertKnownOptions(options, known)).not.toThrow();
  });

  it('names the owner and the path of nested options, and explains a misplaced one', () => {
    expect(thrown(() => assertKnownOptions({ ttll: 1 }, ['ttl'], { of: 'L1 cache', path: 'l1.' }))).toBe(
      'nestjs-api-auth: unknown L1 cache option "l1.ttll" (did you mean "l1.ttl"?)',
    );
    expect(thrown(() => assertKnownOptions({ namespace: 'x' }, ['ttl'], { misplaced: { namespace: 'goes elsewhere.' } }))).toBe(
      'nestjs-api-auth: option "namespace" goes elsewhere.',
    );
  });

  it.each([[null], ['options'], [[1, 2]]])('refuses %j, which is not an options object', (options) => {
    expect(thrown(() => assertKnownOptions(options, known, { of: 'RedisBackend' }))).toBe(
      'nestjs-api-auth: RedisBackend options must be an object.',
    );
  });

  it('suggests nothing for names that are merely short and different', () => {
    expect(closestName('db', ['ttl', 'now'])).toBeUndefined();
    expect(closestName('tll', ['ttl', 'now'])).toBe('ttl');
    expect(closestName('keyPrefix', ['prefix', 'header'])).toBe('prefix');
  });
});

describe('ApiAuthModule options', () => {
  it('resolveApiAuthOptions refuses a misspelled option, naming it and the right one', () => {
    expect(thrown(() => resolveApiAuthOptions({ prefx: 'live_' } as never))).toBe(
      'nestjs-api-auth: unknown option "prefx" (did you mean "prefix"?)',
    );
    const message = thrown(() => resolveApiAuthOptions({ peper: PEPPER } as never));
    expect(message).toContain('unknown option "peper" (did you mean "pepper"?)');
    expect(message).not.toContain(PEPPER);
  });

  it('resolveApiAuthOptions accepts a misspelled key that is undefined: it configures nothing', () => {
    expect(resolveApiAuthOptions({ prefix: 'live_', peper: undefined } as never).pepper).toBeNull();
  });

  it('forRoot refuses a misspelled module option or extra when it is called', () => {
    expect(thrown(() => ApiAuthModule.forRoot({ usageIntervallMs: 0 } as never))).toBe(
      'nestjs-api-auth: unknown option "usageIntervallMs" (did you mean "usageIntervalMs"?)',
    );
    expect(thrown(() => ApiAuthModule.forRoot({ isGlobl: false } as never))).toBe(
      'nestjs-api-auth: unknown option "isGlobl" (did you mean "isGlobal"?)',
    );
    expect(thrown(() => ApiAuthModule.forRoot({ route: true } as never))).toContain('(did you mean "routes"?)');
  });

  it('forRoot refuses a misspelled routes option, with its full path', () => {
    expect(thrown(() => ApiAuthModule.forRoot({ routes: { adminScop: 'keys:admin' } as never }))).toBe(
      'nestjs-api-auth: unknown option "routes.adminScop" (did you mean "routes.adminScope"?)',
    );
    expect(thrown(() => ApiAuthModule.forRoot({ routes: { maxGracePeriod: 1_000 } as never }))).toContain(
      '(did you mean "routes.maxGracePeriodMs"?)',
    );
  });

  it('forRoot still takes every module option and both extras', () => {
    expect(() =>
      ApiAuthModule.forRoot({ prefix: 'live_', pepper: PEPPER, usageIntervalMs: 0, isGlobal: false, routes: { adminScope: 'a' } }),
    ).not.toThrow();
  });

  it('forRootAsync refuses a misspelled key beside the factory', () => {
    const useFactory = () => ({});
    expect(thrown(() => ApiAuthModule.forRootAsync({ useFactory, isGlobl: false } as never))).toBe(
      'nestjs-api-auth: unknown option "isGlobl" (did you mean "isGlobal"?)',
    );
    expect(thrown(() => ApiAuthModule.forRootAsync({ useFactory, routes: { selfServiceScpoe: 'x' } } as never))).toContain(
      '"routes.selfServiceScpoe" (did you mean "routes.selfServiceScope"?)',
    );
    expect(thrown(() => ApiAuthModule.forRootAsync({ useFatory: useFactory } as never))).toBe(
      'nestjs-api-auth: unknown option "useFatory" (did you mean "useFactory"?)',
    );
    expect(thrown(() => ApiAuthModule.forRootAsync({ useFactory, injects: [] } as never))).toContain('(did you mean "inject"?)');
  });

  it('forRootAsync refuses a module option beside the factory, where it would be ignored, saying where it goes', () => {
    expect(thrown(() => ApiAuthModule.forRootAsync({ useFactory: () => ({}), prefix: 'live_' } as never))).toBe(
      'nestjs-api-auth: option "prefix" is not an option of forRootAsync() itself: return it from useFactory ' +
        '(or createApiAuthOptions() of useClass / useExisting).',
    );
  });

  it('forRootAsync still takes every key of its own', () => {
    expect(() =>
      ApiAuthModule.forRootAsync({
        imports: [],
        inject: [],
        provideInjectionTokensFrom: [],
        useFactory: () => ({}),
        isGlobal: false,
        routes: true,
      }),
    ).not.toThrow();
  });

  it('a factory result holding an extra is refused: extras must sit beside useFactory', () => {
    expect(thrown(() => resolveApiAuthOptions({ routes: true } as never))).toBe(
      'nestjs-api-auth: option "routes" cannot come from the forRootAsync() factory: pass it to forRootAsync() itself, beside useFactory.',
    );
    expect(thrown(() => resolveApiAuthOptions({ isGlobal: false } as never))).toContain('cannot come from the forRootAsync() factory');
  });
});

describe('backend and component options', () => {
  // Real clients, never connected: constructing validates options and sends nothing.
  const redis = createClient();
  const orm = MikroORM.initSync({ clientUrl: 'postgresql://postgres@127.0.0.1:5432/postgres', entities: [ApiKeyEntity] });
  const cacheOptions = () => ({ cache: createCache(), primary: new MemoryBackend(), ttl: 60_000 });

  afterAll(async () => {
    await orm.close(true);
  });

  const cases: Array<[string, () => unknown, string]> = [
    ['MikroOrmBackend', () => new MikroOrmBackend(orm, { tableNmae: 'keys' } as never), 'unknown MikroOrmBackend option "tableNmae" (did you mean "tableName"?)'],
    ['createApiKeyEntity', () => createApiKeyEntity({ tablename: 'keys' } as never), 'unknown createApiKeyEntity option "tablename" (did you mean "tableName"?)'],
    ['RedisBackend', () => new RedisBackend(redis, { namespce: 'x:' } as never), 'unknown RedisBackend option "namespce" (did you mean "namespace"?)'],
    ['RedisCacheBackend', () => new RedisCacheBackend({ ...cacheOptions(), negativeTTL: 1_000 } as never), 'unknown RedisCacheBackend option "negativeTTL" (did you mean "negativeTtl"?)'],
    ['createRedisTwoTierBackend', () => createRedisTwoTierBackend({ ...cacheOptions(), redis, connectTimeout: 10 } as never), 'unknown RedisTwoTierBackend option "connectTimeout" (did you mean "connectTimeoutMs"?)'],
    ['createRedisTwoTierBackend l1', () => createRedisTwoTierBackend({ ...cacheOptions(), redis, l1: { maxEntires: 10 } } as never), 'unknown L1 cache option "maxEntires" (did you mean "maxEntries"?)'],
    ['createRedisTwoTierBackend bus', () => createRedisTwoTierBackend({ ...cacheOptions(), redis, bus: { publishTimeout: 10 } } as never), 'unknown RedisTwoTierBackend option "bus.publishTimeout" (did you mean "bus.publishTimeoutMs"?)'],
    ['createRedisTwoTierBackend bus.namespace', () => createRedisTwoTierBackend({ ...cacheOptions(), redis, bus: { namespace: 'x' } } as never), 'RedisTwoTierBackend option "bus.namespace" is not used: the channel takes the top-level "namespace"'],
    ['RedisInvalidationBus', () => new RedisInvalidationBus(redis, { publishTimeout: 10 } as never), 'unknown RedisInvalidationBus option "publishTimeout" (did you mean "publishTimeoutMs"?)'],
    ['RedisUsageCoordinator', () => new RedisUsageCoordinator(redis, { timeout: 10 } as never), 'unknown RedisUsageCoordinator option "timeout" (did you mean "timeoutMs"?)'],
    ['RedisRateLimiter', () => new RedisRateLimiter(redis, { commandTimeout: 10 } as never), 'unknown RedisRateLimiter option "commandTimeout" (did you mean "commandTimeoutMs"?)'],
    ['CachedBackend', () => new CachedBackend(new MemoryBackend(), { negativeTTl: 10 } as never), 'unknown CachedBackend option "negativeTTl" (did you mean "negativeTtl"?)'],
    ['withL1Cache', () => withL1Cache(new MemoryBackend(), { buss: null } as never), 'unknown CachedBackend option "buss" (did you mean "bus"?)'],
    ['L1Cache', () => new L1Cache({ maxNegativeEntires: 10 } as never), 'unknown L1 cache option "maxNegativeEntires" (did you mean "maxNegativeEntries"?)'],
    ['MemoryRateLimiter', () => new MemoryRateLimiter({ clock: () => 0 } as never), 'unknown MemoryRateLimiter option "clock" (known options: now)'],
  ];

  it.each(cases)('%s refuses a misspelled option, naming it and the right one', (_, construct, message) => {
    const error = thrown(construct);
    expect(error).toMatch(/^nestjs-api-auth: /);
    expect(error).toContain(message);
  });

  it('each still accepts its documented options, and keys set to undefined', async () => {
    const built = [
      new MikroOrmBackend(orm, { tableName: 'keys', schema: 'auth', pageSize: 10, ensureSchema: false }),
      createApiKeyEntity({ tableName: 'keys', schema: 'auth', entityName: 'Key' }),
      new RedisBackend(redis, { namespace: 'x:', pageSize: 10, expireRecords: true, expiredRetentionMs: 1, commandTimeoutMs: 1 }),
      new RedisInvalidationBus(redis, { namespace: 'x', publishTimeoutMs: 1, connectionName: 'n' }),
      new RedisUsageCoordinator(redis, { namespace: 'x', timeoutMs: 1 }),
      new RedisRateLimiter(redis, { namespace: 'x', commandTimeoutMs: 1 }),
      new L1Cache({ maxEntries: 1, maxNegativeEntries: 1, ttl: 1, negativeTtl: 1, now: Date.now }),
      new MemoryRateLimiter({ now: Date.now }),
      new RedisCacheBackend({ ...cacheOptions(), negativeTtl: 1, timeoutMs: 1, retryIntervalMs: 1, namespace: 'x', onInvalidate: () => undefined, typo: undefined } as never),
    ];
    expect(built).toHaveLength(9);
    const cached = withL1Cache(new MemoryBackend(), { maxEntries: 1, bus: undefined, ttl: undefined });
    expect(cached.cache.ttlMs).toBe(10_000);
    for (const item of built) await (item as { dispose?: () => Promise<void> }).dispose?.();
  });
});
