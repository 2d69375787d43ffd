import { Controller, Get, Inject, Req, Res, SetMetadata, type Type } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { API_AUTH_OPTIONS } from '../api-auth.constants.js';
import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import { Public } from '../decorators/public.decorator.js';
import { API_AUTH_ROUTES_OPTIONS, type ResolvedApiAuthRoutesOptions } from '../management/api-auth-routes.options.js';
import { loadConsoleAssets, type ConsoleAsset, type ConsoleAssets } from './console.assets.js';
import { CONSOLE_SECURITY_HEADERS } from './console.headers.js';

// `@ApiExcludeController()` by its metadata key: the root entry never imports @nestjs/swagger.
const SWAGGER_EXCLUDE_CONTROLLER = 'swagger/apiExcludeController';

/**
 * Serves the operator console: one page, one script, one style, all public. The page
 * holds no data; whatever it shows it fetches from the guarded management routes with
 * the key the operator pastes. Never registered as is: see {@link createConsoleController}.
 */
@Public()
export class ApiAuthConsoleController {
  private readonly assets: ConsoleAssets;

  constructor(
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
    @Inject(API_AUTH_OPTIONS) options: ResolvedApiAuthOptions,
    @Inject(API_AUTH_ROUTES_OPTIONS) routes: ResolvedApiAuthRoutesOptions,
  ) {
    const writeScopes = [routes.adminScope, routes.selfServiceScope].filter((scope): scope is string => scope !== null);
    this.assets = loadConsoleAssets(options.header, writeScopes);
  }

  @Get()
  page(@Req() request: unknown, @Res() response: unknown): void {
    const adapter = this.adapterHost.httpAdapter;
    const path = String(adapter.getRequestUrl(request) ?? '').split('?')[0]!;
    if (path.endsWith('/')) {
      // The page loads its script relative to its own URL, which a trailing slash
      // (accepted by Express) would shift; a relative Location reflects nothing.
      this.send(response, { contentType: 'text/plain; charset=utf-8', body: '' }, 308, '../console');
      return;
    }
    this.send(response, this.assets.html);
  }

  @Get('console.js')
  script(@Res() response: unknown): void {
    this.send(response, this.assets.script);
  }

  @Get('console.css')
  style(@Res() response: unknown): void {
    this.send(response, this.assets.style);
  }

  @Get('icon.svg')
  icon(@Res() response: unknown): void {
    this.send(response, this.assets.icon);
  }

  private send(response: unknown, asset: ConsoleAsset, status = 200, location?: string): void {
    const adapter = this.adapterHost.httpAdapter;
    for (const [name, value] of Object.entries(CONSOLE_SECURITY_HEADERS)) adapter.setHeader(response, name, value);
    adapter.setHeader(response, 'Content-Type', asset.contentType);
    if (location !== undefined) adapter.setHeader(response, 'Location', location);
    adapter.reply(response, asset.body, status);
  }
}

/** The console controller for one configuration, at `<routes.path>/console`. */
export function createConsoleController(routes: ResolvedApiAuthRoutesOptions): Type<ApiAuthConsoleController> {
  class ConfiguredConsoleController extends ApiAuthConsoleController {}
  Object.defineProperty(ConfiguredConsoleController, 'name', { value: 'ApiAuthConsoleController' });
  Controller(`${routes.path}/console`)(ConfiguredConsoleController);
  SetMetadata(SWAGGER_EXCLUDE_CONTROLLER, [true])(ConfiguredConsoleController);
  return ConfiguredConsoleController;
}
