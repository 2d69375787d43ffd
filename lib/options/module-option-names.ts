import type { ConfigurableModuleAsyncOptions } from '@nestjs/common';
import type { ApiAuthModuleExtras, ApiAuthModuleOptions } from '../api-auth.options.js';
import { assertKnownOptions, optionNames } from './assert-known-options.js';

/**
 * Every name `ApiAuthModule` accepts, and the three places it checks them: the module
 * options themselves (in whatever way they arrive), `forRoot()` and `forRootAsync()`.
 * The mechanism is `assertKnownOptions`; what is known where lives here, once.
 */

/** Every option of {@link ApiAuthModuleOptions}: an option the module does not know stops start-up. */
export const API_AUTH_OPTION_NAMES = optionNames<ApiAuthModuleOptions>({
  backend: true,
  prefix: true,
  pepper: true,
  header: true,
  bearer: true,
  schemes: true,
  queryParam: true,
  trackUsage: true,
  usageIntervalMs: true,
  usageCoordinator: true,
  verifyTimeoutMs: true,
  maxPendingLookups: true,
  realm: true,
  maxMetadataBytes: true,
  maxScopes: true,
  maxKeysPerOwner: true,
  environment: true,
  acceptEnvironments: true,
  rateLimiter: true,
  events: true,
  onEvent: true,
  legacyKeyPrefixes: true,
  previousPeppers: true,
  keyLifetime: true,
  defaultScopes: true,
  defaultPolicy: true,
  purge: true,
});

/**
 * The module's extras reach the builder beside the factory, never through it: they
 * shape the module (global or not, which controllers), which must be known before any
 * provider runs. In a factory's result they would be ignored, so they are refused.
 */
const EXTRAS_IN_FACTORY: { readonly [K in keyof ApiAuthModuleExtras]-?: string } = {
  isGlobal: 'cannot come from the forRootAsync() factory: pass it to forRootAsync() itself, beside useFactory.',
  routes: 'cannot come from the forRootAsync() factory: pass it to forRootAsync() itself, beside useFactory.',
};

const EXTRAS_NAMES = optionNames<ApiAuthModuleExtras>({ isGlobal: true, routes: true });

/** What `forRootAsync()` takes: Nest's async provider keys and the extras. */
const ASYNC_OPTION_NAMES = optionNames<ConfigurableModuleAsyncOptions<ApiAuthModuleOptions, 'createApiAuthOptions'> & ApiAuthModuleExtras>({
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

/** Refuses an unknown module option (and an extra returned by a factory), naming the closest known one. */
export function assertKnownModuleOptions(options: object): void {
  assertKnownOptions(options, API_AUTH_OPTION_NAMES, { misplaced: EXTRAS_IN_FACTORY });
}
