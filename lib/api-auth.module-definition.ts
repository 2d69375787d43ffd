import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { ApiAuthModuleOptions } from './api-auth.options.js';
import type { ApiAuthRoutesOptions } from './management/api-auth-routes.options.js';
import { withManagementRoutes } from './management/management-routes.js';

/** Options that shape the module itself and so cannot come from an async factory. */
export interface ApiAuthModuleExtras {
  /**
   * Register the module globally so `ApiKeyGuard` and `ApiKeyService` resolve in
   * every module without importing it again. Default `true`: authentication is an
   * application-wide concern.
   */
  isGlobal?: boolean;
  /**
   * Serve the key-management routes (`POST /api-keys`, `GET /api-keys`, ...): `true`
   * for the defaults, or options (path, admin and self-service scopes, allowed
   * scopes). Default `false`. The routes always require a verified key holding the
   * admin or the self-service scope; no setting leaves them open.
   */
  routes?: ApiAuthRoutesOptions | boolean;
}

export const {
  ConfigurableModuleClass: ApiAuthConfigurableModule,
  MODULE_OPTIONS_TOKEN: API_AUTH_MODULE_OPTIONS,
  OPTIONS_TYPE: API_AUTH_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: API_AUTH_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<ApiAuthModuleOptions>({ moduleName: 'ApiAuth' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createApiAuthOptions')
  // `routes` must be listed among the defaults: the builder strips only listed keys from the options.
  .setExtras<ApiAuthModuleExtras>({ isGlobal: true, routes: false }, (definition, extras) =>
    withManagementRoutes({ ...definition, global: extras.isGlobal ?? true }, extras.routes),
  )
  .build();
