import { Controller, type DynamicModule, type Type } from '@nestjs/common';
import { RequireAnyScope } from '../decorators/require-scopes.decorator.js';
import {
  API_AUTH_ROUTES_OPTIONS,
  resolveApiAuthRoutesOptions,
  type ApiAuthRoutesOptions,
  type ResolvedApiAuthRoutesOptions,
} from './api-auth-routes.options.js';
import { createConsoleController } from '../console/console.controller.js';
import { ApiKeysController } from './api-keys.controller.js';

/**
 * Adds the key-management controller (at the configured path) and its options to the
 * module definition when `routes` is set. Runs inside `forRoot`/`forRootAsync`, so a
 * configuration that leaves the routes unusable throws before the app is created.
 */
export function withManagementRoutes(
  definition: DynamicModule,
  routes: ApiAuthRoutesOptions | boolean | undefined,
): DynamicModule {
  const resolved = resolveApiAuthRoutesOptions(routes);
  if (!resolved) return definition;
  // The console first: on Express the first matching route wins, and `GET <path>/:id`
  // would otherwise answer `GET <path>/console` with a 401.
  const consoleController = resolved.console ? [createConsoleController(resolved)] : [];
  return {
    ...definition,
    controllers: [...(definition.controllers ?? []), ...consoleController, createApiKeysController(resolved)],
    providers: [...(definition.providers ?? []), { provide: API_AUTH_ROUTES_OPTIONS, useValue: resolved }],
    exports: [...(definition.exports ?? []), API_AUTH_ROUTES_OPTIONS],
  };
}

/**
 * The controller class registered for one configuration: `ApiKeysController` at
 * `routes.path`, admitting keys with the admin, the self-service or the read scope.
 */
export function createApiKeysController(routes: ResolvedApiAuthRoutesOptions): Type<ApiKeysController> {
  class ConfiguredApiKeysController extends ApiKeysController {}
  // Swagger derives operation ids from the class name: keep them stable.
  Object.defineProperty(ConfiguredApiKeysController, 'name', { value: 'ApiKeysController' });
  Controller(routes.path)(ConfiguredApiKeysController);
  const scopes = [routes.adminScope, routes.selfServiceScope, routes.readScope ?? null].filter((s): s is string => s !== null);
  RequireAnyScope(...scopes)(ConfiguredApiKeysController);
  return ConfiguredApiKeysController;
}
