import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { ApiAuthModuleExtras, ApiAuthModuleOptions } from './api-auth.options.js';
import { withManagementRoutes } from './management/management-routes.js';

export type { ApiAuthModuleExtras } from './api-auth.options.js';

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
