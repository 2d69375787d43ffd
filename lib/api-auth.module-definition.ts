import { ConfigurableModuleBuilder } from '@nestjs/common';
import { API_AUTH_OPTION_NAMES, type ApiAuthModuleExtras, type ApiAuthModuleOptions } from './api-auth.options.js';
import { withManagementRoutes } from './management/management-routes.js';
import { assertKnownOptions, optionNames } from './options/assert-known-options.js';

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

const EXTRAS_NAMES = optionNames<ApiAuthModuleExtras>({ isGlobal: true, routes: true });

/** What `forRootAsync()` takes: Nest's async provider keys and the extras. */
const ASYNC_OPTION_NAMES = optionNames<typeof API_AUTH_ASYNC_OPTIONS_TYPE>({
  imports: true,
  useFactory: true,
  useClass: true,
  useExisting: true,
  inject: true,
  provideInjectionTokensFrom: true,
  isGlobal: true,
  routes: true,
});

/** A module option put beside `useFactory` is taken for an extra by the builder and ignored. */
const MODULE_OPTIONS_BESIDE_FACTORY = Object.fromEntries(
  API_AUTH_OPTION_NAMES.map((name) => [
    name,
    'is not an option of forRootAsync() itself: return it from useFactory (or createApiAuthOptions() of useClass / useExisting).',
  ]),
);

/** Refuses an option of `forRoot()` that is neither a module option nor an extra, when `forRoot()` is called. */
export function assertKnownForRootOptions(options: object): void {
  assertKnownOptions(options, [...API_AUTH_OPTION_NAMES, ...EXTRAS_NAMES]);
}

/**
 * Refuses an option of `forRootAsync()` that Nest's builder would otherwise take for an
 * extra and ignore (`isGlobl`, or a module option such as `prefix` that belongs in the
 * factory's result), when `forRootAsync()` is called.
 */
export function assertKnownForRootAsyncOptions(options: object): void {
  assertKnownOptions(options, ASYNC_OPTION_NAMES, { misplaced: MODULE_OPTIONS_BESIDE_FACTORY });
}
