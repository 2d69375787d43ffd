import { Controller, Get, Inject, Injectable, Module, UseGuards, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import {
  API_AUTH_OPTIONS,
  API_KEY_BACKEND,
  ApiAuthModule,
  ApiKeyGuard,
  ApiKeyOwner,
  ApiKeyService,
  InjectApiKeyBackend,
  MemoryBackend,
  type ApiAuthModuleOptions,
  type ApiKeyBackend,
  type ResolvedApiAuthOptions,
} from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { InstrumentedBackend } from '../fixtures/instrumented.backend.js';

const CONFIG = Symbol('CONFIG');

/** Stands in for a user's ConfigModule: the async factories read from it. */
@Module({
  providers: [{ provide: CONFIG, useValue: { prefix: 'cfg_', realm: 'configured' } }],
  exports: [CONFIG],
})
class ConfigModule {}

@Injectable()
class ApiAuthConfig {
  constructor(@Inject(CONFIG) private readonly config: { prefix: string; realm: string }) {}

  createApiAuthOptions(): ApiAuthModuleOptions {
    return { prefix: this.config.prefix, realm: this.config.realm };
  }
}

/** A feature module that never imports ApiAuthModule. */
@Controller('feature')
@UseGuards(ApiKeyGuard)
class FeatureController {
  constructor(private readonly apiKeys: ApiKeyService) {}

  @Get()
  whoami(@ApiKeyOwner() ownerId: string) {
    return { ownerId, prefix: this.apiKeys.format.prefix };
  }
}

@Module({ controllers: [FeatureController] })
class FeatureModule {}

const apps: INestApplication[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function boot(...args: Parameters<typeof bootApp>): Promise<INestApplication> {
  const app = await bootApp(...args);
  apps.push(app);
  return app;
}

/** The error that compiling a module with these imports fails with. */
async function startupError(imports: Parameters<typeof Test.createTestingModule>[0]['imports']): Promise<Error> {
  try {
    const moduleRef = await Test.createTestingModule({ imports }).compile();
    await moduleRef.close();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected start-up to fail');
}

describe('ApiAuthModule.forRoot', () => {
  it('provides the service, the guard, the resolved options and a MemoryBackend by default', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [ApiAuthModule.forRoot()] }).compile();
    expect(moduleRef.get(API_KEY_BACKEND)).toBeInstanceOf(MemoryBackend);
    expect(moduleRef.get(ApiKeyService)).toBeInstanceOf(ApiKeyService);
    expect(moduleRef.get(ApiKeyGuard)).toBeInstanceOf(ApiKeyGuard);
    expect(moduleRef.get<ResolvedApiAuthOptions>(API_AUTH_OPTIONS)).toMatchObject({ prefix: 'sk_', ownsBackend: true });
    const { key } = await moduleRef.get(ApiKeyService).issue({ ownerId: 'o', name: 'n' });
    expect(key.startsWith('sk_')).toBe(true);
    await moduleRef.close();
  });

  it('uses the backend it is given, the same instance behind API_KEY_BACKEND and @InjectApiKeyBackend()', async () => {
    @Injectable()
    class UsesBackend {
      constructor(@InjectApiKeyBackend() readonly backend: ApiKeyBackend) {}
    }
    const backend = new InstrumentedBackend();
    const moduleRef = await Test.createTestingModule({
      imports: [ApiAuthModule.forRoot({ backend })],
      providers: [UsesBackend],
    }).compile();
    expect(moduleRef.get(API_KEY_BACKEND)).toBe(backend);
    expect(moduleRef.get(UsesBackend).backend).toBe(backend);
    const { apiKey } = await moduleRef.get(ApiKeyService).issue({ ownerId: 'o', name: 'n' });
    expect(await backend.getById(apiKey.id)).not.toBeNull();
    await moduleRef.close();
  });
});

describe.each(ADAPTERS)('ApiAuthModule.forRootAsync over %s', (adapter) => {
  it('builds options with useFactory from imported, injected providers (async factory)', async () => {
    const backend = new InstrumentedBackend();
    const app = await boot(
      adapter,
      [
        ApiAuthModule.forRootAsync({
          imports: [ConfigModule],
          inject: [CONFIG],
          useFactory: async (config: { prefix: string; realm: string }) => {
            await new Promise((r) => setTimeout(r, 5));
            return { prefix: config.prefix, realm: config.realm, backend };
          },
        }),
      ],
    );
    const { key } = await app.get(ApiKeyService).issue({ ownerId: 'async-owner', name: 'n' });
    expect(key.startsWith('cfg_')).toBe(true);
    expect(app.get(API_KEY_BACKEND)).toBe(backend);
    const http = request(app.getHttpServer());
    expect((await http.get('/t/me').set('X-API-Key', key).expect(200)).body.ownerId).toBe('async-owner');
    expect((await http.get('/t/me').expect(401)).headers['www-authenticate']).toBe('ApiKey realm="configured"');
  });

  it('builds options with useClass, whose own dependencies come from imports', async () => {
    const app = await boot(adapter, [ApiAuthModule.forRootAsync({ imports: [ConfigModule], useClass: ApiAuthConfig })]);
    const { key } = await app.get(ApiKeyService).issue({ ownerId: 'class-owner', name: 'n' });
    expect(key.startsWith('cfg_')).toBe(true);
    const http = request(app.getHttpServer());
    expect((await http.get('/t/me').set('X-API-Key', key).expect(200)).body.ownerId).toBe('class-owner');
  });

  it('is global by default: a feature module\'s controller uses the guard and service without importing it', async () => {
    const app = await boot(adapter, [ApiAuthModule.forRoot({ prefix: 'feat_' }), FeatureModule], { controllers: [] });
    const { key } = await app.get(ApiKeyService).issue({ ownerId: 'feature-owner', name: 'n' });
    const http = request(app.getHttpServer());
    expect((await http.get('/feature').set('X-API-Key', key).expect(200)).body).toEqual({
      ownerId: 'feature-owner',
      prefix: 'feat_',
    });
    await http.get('/feature').expect(401);
  });
});

describe('isGlobal: false', () => {
  it('keeps the providers inside the importing module, so a feature module must import it', async () => {
    const error = await startupError([ApiAuthModule.forRoot({ isGlobal: false }), FeatureModule]);
    expect(error.message).toMatch(/ApiKeyGuard|ApiKeyService/);
  });

  it('still works for the module that imports it', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [ApiAuthModule.forRoot({ isGlobal: false })] }).compile();
    expect(moduleRef.get(ApiKeyService)).toBeInstanceOf(ApiKeyService);
    await moduleRef.close();
  });
});

describe('invalid configuration fails at start-up, naming the option', () => {
  it.each([
    ['prefix', { prefix: 'bad-prefix' }],
    ['header', { header: 'x api key' }],
    ['realm', { realm: 'a"b' }],
    ['usageIntervalMs', { usageIntervalMs: -5 }],
    ['backend', { backend: { getByHash: () => null } }],
    ['pepper', { pepper: 'too-short' }],
    ['pepper', { pepper: '' }],
  ])('forRoot with a bad %s', async (option, options) => {
    const error = await startupError([ApiAuthModule.forRoot(options as ApiAuthModuleOptions)]);
    expect(error.message).toContain(`option "${option}"`);
  });

  it('forRootAsync whose factory returns a bad option', async () => {
    const error = await startupError([ApiAuthModule.forRootAsync({ useFactory: () => ({ verifyTimeoutMs: -1 }) })]);
    expect(error.message).toContain('option "verifyTimeoutMs"');
  });

  it('forRootAsync whose factory returns a misspelled option: start-up fails, suggesting the right name', async () => {
    const error = await startupError([
      ApiAuthModule.forRootAsync({
        imports: [ConfigModule],
        inject: [CONFIG],
        useFactory: (config: { prefix: string }) => ({ prefix: config.prefix, peper: 'a-secret-pepper-value' }) as ApiAuthModuleOptions,
      }),
    ]);
    expect(error.message).toBe('nestjs-api-auth: unknown option "peper" (did you mean "pepper"?)');
  });

  it('forRootAsync with useClass whose createApiAuthOptions() returns a misspelled option', async () => {
    @Injectable()
    class TypoConfig {
      createApiAuthOptions(): ApiAuthModuleOptions {
        return { verifyTimeoutMS: 100 } as ApiAuthModuleOptions;
      }
    }
    const error = await startupError([ApiAuthModule.forRootAsync({ useClass: TypoConfig })]);
    expect(error.message).toBe('nestjs-api-auth: unknown option "verifyTimeoutMS" (did you mean "verifyTimeoutMs"?)');
  });

  it('forRootAsync whose factory returns routes, which only forRootAsync() itself can take', async () => {
    const error = await startupError([
      ApiAuthModule.forRootAsync({ useFactory: () => ({ routes: true }) as ApiAuthModuleOptions }),
    ]);
    expect(error.message).toContain('option "routes" cannot come from the forRootAsync() factory');
  });

  it('forRoot and forRootAsync accept options built by spreading config with keys left undefined', async () => {
    const fromEnv = { pepper: undefined, prefix: 'cfg_', usageIntervalMs: undefined } as ApiAuthModuleOptions;
    const app = await boot('express', [ApiAuthModule.forRoot({ ...fromEnv, routes: undefined })]);
    expect(app.get<ResolvedApiAuthOptions>(API_AUTH_OPTIONS).prefix).toBe('cfg_');
    const moduleRef = await Test.createTestingModule({
      imports: [ApiAuthModule.forRootAsync({ useFactory: () => fromEnv, isGlobal: undefined })],
    }).compile();
    expect(moduleRef.get<ResolvedApiAuthOptions>(API_AUTH_OPTIONS).pepper).toBeNull();
    await moduleRef.close();
  });

  it('forRootAsync whose factory returns nothing', async () => {
    const error = await startupError([
      ApiAuthModule.forRootAsync({ useFactory: () => undefined as unknown as ApiAuthModuleOptions }),
    ]);
    expect(error.message).toContain('ApiAuthModule options must be an object');
  });

  it('forRootAsync without useFactory, useClass or useExisting throws when called, saying what is missing', () => {
    const message = /forRootAsync\(\) needs one of useFactory, useClass or useExisting/;
    expect(() => ApiAuthModule.forRootAsync({})).toThrow(message);
    expect(() => ApiAuthModule.forRootAsync({ imports: [ConfigModule], inject: [CONFIG] })).toThrow(message);
    expect(() => ApiAuthModule.forRootAsync(undefined as never)).toThrow(message);
  });
});

describe('ownership', () => {
  it('never closes a backend the user passed in, and keeps it usable after the app closes', async () => {
    const backend = new InstrumentedBackend();
    const app = await bootApp('express', [ApiAuthModule.forRoot({ backend })]);
    const { apiKey } = await app.get(ApiKeyService).issue({ ownerId: 'o', name: 'n' });
    await app.close();
    expect(backend.closed).toBe(0);
    expect(await backend.getById(apiKey.id)).not.toBeNull();
  });

  it('never closes a backend built by an async factory from the user\'s providers', async () => {
    const backend = new InstrumentedBackend();
    const app = await bootApp('fastify', [
      ApiAuthModule.forRootAsync({ imports: [ConfigModule], inject: [CONFIG], useFactory: () => ({ backend }) }),
    ]);
    await app.close();
    expect(backend.closed).toBe(0);
    expect(backend.calls.delete).toBe(0);
  });

  it('writes pending lastUsedAt on shutdown', async () => {
    const backend = new InstrumentedBackend();
    const app = await bootApp('express', [ApiAuthModule.forRoot({ backend })]);
    const service = app.get(ApiKeyService);
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'n' });
    // verify() schedules the write for the next turn of the event loop; close() must not lose it.
    await service.verify(key);
    await app.close();
    expect((await backend.getById(apiKey.id))?.lastUsedAt).toBeInstanceOf(Date);
  });
});
