import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiAuthModule, ApiKeyGuard } from 'nestjs-api-auth';
import { AppController } from './app.controller.js';
import { createSampleBackend, type SampleBackend } from './sample-backend.js';

const SAMPLE_BACKEND = Symbol('SAMPLE_BACKEND');

@Module({
  providers: [{ provide: SAMPLE_BACKEND, useFactory: () => createSampleBackend() }],
  exports: [SAMPLE_BACKEND],
})
class SampleBackendModule implements OnApplicationShutdown {
  constructor(@Inject(SAMPLE_BACKEND) private readonly sample: SampleBackend) {}

  // The app opened these connections, so the app closes them; the library never does.
  async onApplicationShutdown() {
    await this.sample.close();
  }
}

@Module({
  imports: [
    ApiAuthModule.forRootAsync({
      // Key management over HTTP at /api-keys: keys with "api-keys:admin" manage every
      // key, keys with "api-keys:self" their own owner's. Never open without a key. The
      // operator console (a page that uses these routes) is at /api-keys/console.
      routes: { path: 'api-keys', console: true },
      imports: [SampleBackendModule],
      inject: [SAMPLE_BACKEND],
      useFactory: (sample: SampleBackend) => ({
        backend: sample.backend,
        prefix: process.env.API_KEY_PREFIX ?? 'demo_',
        pepper: process.env.API_KEY_PEPPER,
      }),
    }),
  ],
  controllers: [AppController],
  // Every route needs a key unless it is marked @Public().
  providers: [{ provide: APP_GUARD, useClass: ApiKeyGuard }],
})
export class AppModule {}
