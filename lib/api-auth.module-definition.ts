import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { ApiAuthModuleOptions } from './api-auth.options.js';

/** Options that shape the module itself and so cannot come from an async factory. */
export interface ApiAuthModuleExtras {
  /**
   * Register the module globally so `ApiKeyGuard` and `ApiKeyService` resolve in
   * every module without importing it again. Default `true`: authentication is an
   * application-wide concern.
   */
  isGlobal?: boolean;
}

export const {
  ConfigurableModuleClass: ApiAuthConfigurableModule,
  MODULE_OPTIONS_TOKEN: API_AUTH_MODULE_OPTIONS,
  OPTIONS_TYPE: API_AUTH_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: API_AUTH_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<ApiAuthModuleOptions>({ moduleName: 'ApiAuth' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createApiAuthOptions')
  .setExtras<ApiAuthModuleExtras>({ isGlobal: true }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal ?? true,
  }))
  .build();
