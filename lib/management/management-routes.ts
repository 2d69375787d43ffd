import type { DynamicModule } from '@nestjs/common';
import {
  API_AUTH_ROUTES_OPTIONS,
  resolveApiAuthRoutesOptions,
  type ApiAuthRoutesOptions,
} from './api-auth-routes.options.js';
import { createConsoleController } from '../console/console.controller.js';
import { createApiKeysController } from './api-keys.controller.js';

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
