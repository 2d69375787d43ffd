import type { INestApplicationContext } from '@nestjs/common';
import { GUARDS_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { ApplicationConfig, MetadataScanner, ModulesContainer, Reflector } from '@nestjs/core';
import { ApiKeyGuard } from '../api-key.guard.js';
import type { ScopeRequirement } from '../decorators/require-scopes.decorator.js';
import { readRouteAccess } from '../decorators/route-access.js';
import { ApiKeysController } from '../management/api-keys.controller.js';

/** A route handler or a controller class: something Nest and Swagger read metadata from. */
export type MetadataTarget = (...args: any[]) => unknown;

/** One route handler and what `ApiKeyGuard` demands of it. */
export interface ApiKeyRoute {
  /** The handler function (what Nest and Swagger read route metadata from). */
  handler: MetadataTarget;
  controller: MetadataTarget;
  methodName: string;
  /** Whether `ApiKeyGuard` (or a subclass) runs for it and it is not `@Public()`. */
  guarded: boolean;
  /** The scopes it requires, when guarded and decorated with `@RequireScopes()`/`@RequireAnyScope()`. */
  requirement?: ScopeRequirement;
  /** The key environments it accepts, when guarded and decorated with `@RequireEnvironment()`. */
  environments?: readonly string[];
  /** `@OptionalApiKey()`: guarded, but calls without a key go through. */
  optional?: boolean;
  /** For the key-management routes: which one (`issue`, `list`, `get`, ...). */
  management?: string;
}

/** Whether a guard entry (class or instance) is `ApiKeyGuard` or extends it. */
function isApiKeyGuard(guard: unknown): boolean {
  if (guard instanceof ApiKeyGuard) return true;
  return typeof guard === 'function' && (guard === ApiKeyGuard || guard.prototype instanceof ApiKeyGuard);
}

/** Whether the app registered `ApiKeyGuard` globally (`useGlobalGuards` or an `APP_GUARD` provider). */
function hasGlobalApiKeyGuard(app: INestApplicationContext): boolean {
  const config = app.get(ApplicationConfig, { strict: false });
  if (config.getGlobalGuards().some(isApiKeyGuard)) return true;
  return config
    .getGlobalRequestGuards()
    .some((wrapper) => isApiKeyGuard(wrapper.instance) || isApiKeyGuard(wrapper.metatype));
}

/**
 * Every HTTP route handler of the application, with whether `ApiKeyGuard` protects
 * it. Reads the same metadata the guard reads at request time (`@UseGuards` on the
 * method or class, global guards, `@Public()` and the requirements, nearest first: see `readRouteAccess`), so the
 * documentation cannot disagree with what the server enforces.
 */
export function findApiKeyRoutes(app: INestApplicationContext): ApiKeyRoute[] {
  const reflector = new Reflector();
  const scanner = new MetadataScanner();
  const global = hasGlobalApiKeyGuard(app);
  const routes: ApiKeyRoute[] = [];
  for (const module of app.get(ModulesContainer, { strict: false }).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as MetadataTarget | null;
      if (typeof controller !== 'function' || !controller.prototype) continue;
      const classGuarded = ((Reflect.getMetadata(GUARDS_METADATA, controller) as unknown[]) ?? []).some(isApiKeyGuard);
      const management = controller.prototype instanceof ApiKeysController;
      for (const methodName of scanner.getAllMethodNames(controller.prototype)) {
        const handler = controller.prototype[methodName] as MetadataTarget;
        if (Reflect.getMetadata(PATH_METADATA, handler) === undefined) continue;
        const methodGuarded = ((Reflect.getMetadata(GUARDS_METADATA, handler) as unknown[]) ?? []).some(isApiKeyGuard);
        const access = readRouteAccess(reflector, handler, controller);
        const guarded = (global || classGuarded || methodGuarded) && !access.isPublic;
        const requirement = guarded ? access.requirement : undefined;
        const environments = guarded ? access.environments : undefined;
        routes.push({
          handler,
          controller,
          methodName,
          guarded,
          ...(requirement ? { requirement } : {}),
          ...(environments ? { environments } : {}),
          ...(guarded && access.optional ? { optional: true } : {}),
          ...(management ? { management: methodName } : {}),
        });
      }
    }
  }
  return routes;
}
