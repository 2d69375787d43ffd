import { Module, Optional, type DynamicModule, type OnModuleInit, type Provider } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { API_AUTH_OPTIONS } from './api-auth.constants.js';
import {
  API_AUTH_ASYNC_OPTIONS_TYPE,
  API_AUTH_MODULE_OPTIONS,
  API_AUTH_OPTIONS_TYPE,
  ApiAuthConfigurableModule,
} from './api-auth.module-definition.js';
import type { ApiAuthModuleOptions, ResolvedApiAuthOptions } from './api-auth.options.js';
import { ApiKeyGuard } from './api-key.guard.js';
import { ApiKeyService } from './api-key.service.js';
import { API_KEY_BACKEND } from './backends/backend.interface.js';
import { declareExpressRequestProperty } from './transport/express-request-property.js';
import { assertKnownForRootAsyncOptions, assertKnownForRootOptions } from './options/module-option-names.js';
import { resolveApiAuthOptions } from './options/resolve-options.js';
import { PurgeScheduler } from './purge/purge.scheduler.js';

const providers: Provider[] = [
  {
    provide: API_AUTH_OPTIONS,
    // Defaults and validation happen here, once, so a bad option stops start-up
    // with a message naming it rather than failing the first request.
    useFactory: (options: ApiAuthModuleOptions) => resolveApiAuthOptions(options),
    inject: [API_AUTH_MODULE_OPTIONS],
  },
  {
    provide: API_KEY_BACKEND,
    useFactory: (options: ResolvedApiAuthOptions) => options.backend,
    inject: [API_AUTH_OPTIONS],
  },
  ApiKeyService,
  ApiKeyGuard,
  // Idle unless the `purge` option is set.
  PurgeScheduler,
];

/**
 * API-key authentication: `ApiAuthModule.forRoot({ prefix: 'prod_' })`, or
 * `forRootAsync({ imports, inject, useFactory })` to build the backend from other
 * providers (a `MikroORM` instance, a cache).
 */
@Module({
  providers,
  exports: [API_AUTH_OPTIONS, API_KEY_BACKEND, ApiKeyService, ApiKeyGuard],
})
export class ApiAuthModule extends ApiAuthConfigurableModule implements OnModuleInit {
  constructor(@Optional() private readonly adapterHost?: HttpAdapterHost) {
    super();
  }

  /** On Express, declares `request.apiKey` on the app's request prototype (see declareExpressRequestProperty). */
  onModuleInit(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (adapter?.getType() === 'express') declareExpressRequestProperty(adapter.getInstance());
  }

  static override forRoot(options: typeof API_AUTH_OPTIONS_TYPE = {}): DynamicModule {
    if (options === null || typeof options !== 'object') {
      throw new Error('nestjs-api-auth: ApiAuthModule options must be an object.');
    }
    // Checked at the call, against the module options and the extras together: the
    // options provider sees them without the extras, so it could not suggest
    // `isGlobal` for `isGlobl`.
    assertKnownForRootOptions(options);
    return super.forRoot(options);
  }

  static override forRootAsync(options: typeof API_AUTH_ASYNC_OPTIONS_TYPE): DynamicModule {
    // First, so that `useFatory` is reported as the typo it is, not as a missing factory.
    if (options !== null && typeof options === 'object') assertKnownForRootAsyncOptions(options);
    if (!options || (!options.useFactory && !options.useClass && !options.useExisting)) {
      throw new Error(
        'nestjs-api-auth: ApiAuthModule.forRootAsync() needs one of useFactory, useClass or useExisting.',
      );
    }
    return super.forRootAsync(options);
  }
}
