import type { INestApplicationContext } from '@nestjs/common';
import { GUARDS_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { ApplicationConfig, MetadataScanner, ModulesContainer, Reflector } from '@nestjs/core';
import { IS_PUBLIC_KEY, REQUIRED_ENVIRONMENT_KEY, REQUIRED_SCOPES_KEY } from '../api-auth.constants.js';
import { ApiKeyGuard } from '../api-key.guard.js';
import type { ScopeRequirement } from '../decorators/require-scopes.decorator.js';
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
 * method or class, global guards, `@Public()` with method-level precedence), so the
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
        const targets = [handler, controller];
        const methodGuarded = ((Reflect.getMetadata(GUARDS_METADATA, handler) as unknown[]) ?? []).some(isApiKeyGuard);
        const isPublic = reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC_KEY, targets) === true;
        const guarded = (global || classGuarded || methodGuarded) && !isPublic;
        const requirement = guarded
          ? reflector.getAllAndOverride<ScopeRequirement | undefined>(REQUIRED_SCOPES_KEY, targets)
          : undefined;
        const environments = guarded
          ? reflector.getAllAndOverride<readonly string[] | undefined>(REQUIRED_ENVIRONMENT_KEY, targets)
          : undefined;
        routes.push({
          handler,
          controller,
          methodName,
          guarded,
          ...(requirement ? { requirement } : {}),
          ...(environments ? { environments } : {}),
          ...(management ? { management: methodName } : {}),
        });
      }
    }
  }
  return routes;
}
