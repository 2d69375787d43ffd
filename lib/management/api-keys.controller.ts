import {
  Body,
  Delete,
  Get,
  Header,
  Headers,
  HttpCode,
  Inject,
  Param,
  Patch,
  Post,
  Query,
  UseFilters,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { API_AUTH_OPTIONS } from '../api-auth.constants.js';
import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import type { ApiKeyView } from '../api-key.interface.js';
import { ApiKeyNotFoundError } from '../api-key.errors.js';
import { ApiKeyGuard } from '../api-key.guard.js';
import { ApiKeyService } from '../api-key.service.js';
import { CurrentApiKey } from '../decorators/current-api-key.decorator.js';
import { validateQuotaChange } from '../policy/quota-balance.js';
import type { RateLimiter } from '../policy/rate-limiter.interface.js';
import { notSupported, quotaBalanceOf, toQuotaBalanceResource } from './quota-balance.resource.js';
import { API_AUTH_ROUTES_OPTIONS, type ResolvedApiAuthRoutesOptions } from './api-auth-routes.options.js';
import {
  toApiKeyResource,
  type ApiKeyListAllPageResource,
  type ApiKeyPageResource,
  type ApiKeyResource,
  type IssuedApiKeyResource,
  type RotatedApiKeyResource,
} from './api-key.resource.js';
import { EntityTagInterceptor } from './entity-tag.interceptor.js';
import { expectedVersionFromIfMatch } from './if-match.js';
import { ManagementCallBounds } from './management-call-bounds.interceptor.js';
import { ManagementExceptionFilter } from './management-exception.filter.js';
import { assertAdmin, assertGrantable, assertPolicyUntouched, callerOf, forbidden, refuse, writerOf, type Caller } from './management-caller.js';
import { issueRequestOf } from './issue-request.js';
import { splitListAllQuery } from './list-all.validation.js';
import {
  parseEmptyRequest,
  parseIssueRequest,
  parseListQuery,
  parseRevokeQuery,
  parseRotateRequest,
  parseUpdateRequest,
  type ManagementLimits,
} from './management.validation.js';
import { refusalForExpiryChange, refusalForResult, refusalForScopes } from './self-service.rules.js';

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The key-management routes. Never registered as is: `ApiAuthModule` registers a
 * subclass per configured path (see `createApiKeysController` in management-routes.ts) that also
 * demands the admin, self-service or read scope.
 *
 * The guard sits on this base class, so no subclass and no configuration can serve
 * these routes without a verified key; each handler checks again what the key may
 * do, because the guard alone only knows "has one of the scopes".
 */
@UseGuards(ApiKeyGuard)
@UseFilters(ManagementExceptionFilter)
@UseInterceptors(ManagementCallBounds, EntityTagInterceptor)
export class ApiKeysController {
  private readonly limits: ManagementLimits;
  private readonly rateLimiter: RateLimiter;

  constructor(
    @Inject(ApiKeyService) private readonly apiKeys: ApiKeyService,
    @Inject(API_AUTH_OPTIONS) options: ResolvedApiAuthOptions,
    @Inject(API_AUTH_ROUTES_OPTIONS) private readonly routes: ResolvedApiAuthRoutesOptions,
  ) {
    this.rateLimiter = options.rateLimiter;
    this.limits = {
      maxScopes: options.maxScopes,
      maxMetadataBytes: options.maxMetadataBytes,
      allowedScopes: routes.allowedScopes,
      maxGracePeriodMs: routes.maxGracePeriodMs,
      defaultPageSize: routes.defaultPageSize,
      maxPageSize: routes.maxPageSize,
      scopesOptional: apiKeys.defaultScopes !== null,
    };
    const outside = apiKeys.defaultScopes?.filter((scope) => routes.allowedScopes !== null && !routes.allowedScopes.has(scope));
    if (outside !== undefined && outside.length > 0) {
      throw new Error(`nestjs-api-auth: option "defaultScopes" names scopes outside routes.allowedScopes: ${outside.join(', ')}.`);
    }
  }

  /** Issues a key. The plaintext is in this response and nowhere else, ever. */
  @Post()
  @HttpCode(201)
  @Header('Cache-Control', 'no-store')
  async issue(@CurrentApiKey() apiKey: ApiKeyView | undefined, @Body() body: unknown): Promise<IssuedApiKeyResource> {
    const caller = writerOf(apiKey, this.routes);
    const { ownerId, ...request } = issueRequestOf(caller, parseIssueRequest(body, this.limits), this.apiKeys.defaultScopes ?? []);
    const { key, apiKey: issued } = await this.apiKeys.issue({ ...request, ownerId, issuedById: caller.id });
    return { key, apiKey: toApiKeyResource(issued) };
  }

  /** One page of an owner's keys (the caller's own by default), with the owner's total. */
  @Get()
  @Header('Cache-Control', 'no-store')
  async list(
    @CurrentApiKey() apiKey: ApiKeyView | undefined,
    @Query() query: unknown,
  ): Promise<ApiKeyPageResource | ApiKeyListAllPageResource> {
    const caller = callerOf(apiKey, this.routes);
    const across = splitListAllQuery(query);
    if (across.all) {
      const { ownerId, cursor, limit } = parseListQuery(across.rest, this.limits);
      if (!caller.readsAll) throw forbidden('forbidden_owner', 'Only an admin or read-only operator key can list keys across owners.');
      const page = await this.apiKeys.listAllPage({ ownerId, cursor, limit, environment: across.environment, status: across.status });
      return { items: page.items.map(toApiKeyResource), nextCursor: page.nextCursor };
    }
    const { ownerId = caller.ownerId, cursor, limit } = parseListQuery(across.rest, this.limits);
    if (!caller.readsAll && ownerId !== caller.ownerId) {
      throw forbidden('forbidden_owner', 'A self-service key can only list the keys of its own owner.');
    }
    const page = await this.apiKeys.listPage(ownerId, { cursor, limit });
    return { items: page.items.map(toApiKeyResource), nextCursor: page.nextCursor, total: page.total };
  }

  /** The key, with its quota's balance read now from the rate limiter (`quota`). */
  @Get(':id')
  @Header('Cache-Control', 'no-store')
  async get(@CurrentApiKey() apiKey: ApiKeyView | undefined, @Param('id') id: string): Promise<ApiKeyResource> {
    const found = await this.load(callerOf(apiKey, this.routes), id, 'read');
    const quota = await quotaBalanceOf(this.rateLimiter, found);
    return quota === undefined ? toApiKeyResource(found) : { ...toApiKeyResource(found), quota };
  }

  /**
   * Sets (`{ "set": n }`) or tops up (`{ "add": n }`) the key's quota balance, in one
   * atomic limiter step. Admin only: a self-service key could otherwise refill itself.
   */
  @Post(':id/quota')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async quota(@CurrentApiKey() apiKey: ApiKeyView | undefined, @Param('id') id: string, @Body() body: unknown): Promise<ApiKeyResource> {
    const caller = callerOf(apiKey, this.routes);
    assertAdmin(caller, this.routes, 'Only an admin key can change a quota balance.');
    const change = validateQuotaChange(body);
    const target = await this.load(caller, id);
    const balance = await this.apiKeys.adjustQuota(target.id, change).catch((error: unknown) => {
      throw notSupported(error);
    });
    return { ...toApiKeyResource(target), quota: toQuotaBalanceResource(balance) };
  }

  /** Changes name, scopes, metadata, expiry or (admin only) policy. */
  @Patch(':id')
  @Header('Cache-Control', 'no-store')
  async update(
    @CurrentApiKey() apiKey: ApiKeyView | undefined,
    @Param('id') id: string,
    @Body() body: unknown,
    @Headers('if-match') ifMatch?: string,
  ): Promise<ApiKeyResource> {
    const caller = writerOf(apiKey, this.routes);
    const changes = parseUpdateRequest(body, this.limits);
    const target = await this.load(caller, id);
    if (!caller.admin) {
      // Managing a key more capable than the caller is escalation too, a rename included.
      assertGrantable(caller, target.scopes);
      if (changes.scopes) assertGrantable(caller, changes.scopes);
      assertPolicyUntouched(caller, changes.policy);
      if (changes.expiresAt !== undefined) refuse(refusalForExpiryChange(target.expiresAt, changes.expiresAt));
      refuse(refusalForResult(caller, { ...target, ...changes }));
    }
    // A self-service expiry change was checked against the expiry read above, so it is
    // pinned to that read: an admin shortening the expiry in between makes it a 412,
    // never silently undone. Other fields' checks do not depend on the stored values.
    const pinned = !caller.admin && changes.expiresAt !== undefined;
    const expectedVersion = expectedVersionFromIfMatch(ifMatch, target.id, target.version) ?? (pinned ? target.version : undefined);
    return toApiKeyResource(await this.apiKeys.update(target.id, changes, { expectedVersion }));
  }

  /**
   * Revokes the key for good, and (unless `?cascade=false`) every key it issued,
   * transitively. Revoking twice keeps the first `revokedAt`.
   */
  @Post(':id/revoke')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async revoke(
    @CurrentApiKey() apiKey: ApiKeyView | undefined,
    @Param('id') id: string,
    @Body() body: unknown,
    @Query() query: unknown,
    @Headers('if-match') ifMatch?: string,
  ): Promise<ApiKeyResource> {
    const caller = writerOf(apiKey, this.routes);
    parseEmptyRequest(body);
    const { cascade } = parseRevokeQuery(query);
    const target = await this.load(caller, id);
    if (!caller.admin) refuse(refusalForScopes(caller, target));
    const expectedVersion = expectedVersionFromIfMatch(ifMatch, target.id, target.version);
    return toApiKeyResource(await this.apiKeys.revoke(target.id, { cascade, expectedVersion }));
  }

  /** Issues a replacement (plaintext in this response only); the old key lives for `gracePeriodMs`. */
  @Post(':id/rotate')
  @HttpCode(201)
  @Header('Cache-Control', 'no-store')
  async rotate(
    @CurrentApiKey() apiKey: ApiKeyView | undefined,
    @Param('id') id: string,
    @Body() body: unknown,
  ): Promise<RotatedApiKeyResource> {
    const caller = writerOf(apiKey, this.routes);
    const options = parseRotateRequest(body, this.limits);
    const target = await this.load(caller, id);
    // The replacement carries the old key's scopes, environment, policy (on its counters)
    // and expiry, and the caller receives its plaintext.
    if (!caller.admin) refuse(refusalForResult(caller, target));
    // A key that rotates itself hands its place to the replacement (same issuer), so
    // revoking the old key at the end of the grace period does not cascade to it.
    const issuedById = caller.id === target.id ? (target.issuedById ?? null) : caller.id;
    const rotated = await this.apiKeys.rotate(target.id, { ...options, issuedById });
    // Checked again on what was minted: the target may have changed since it was read.
    // A replacement that fails the rules is deleted before anyone sees its plaintext.
    const late = caller.admin ? null : refusalForResult(caller, rotated.apiKey);
    if (late !== null) {
      await this.apiKeys.delete(rotated.apiKey.id);
      refuse(late);
    }
    return { key: rotated.key, apiKey: toApiKeyResource(rotated.apiKey), previous: toApiKeyResource(rotated.previous) };
  }

  /** Deletes the record. A revoked key stays listed; a deleted one is gone. */
  @Delete(':id')
  @HttpCode(204)
  @Header('Cache-Control', 'no-store')
  async remove(@CurrentApiKey() apiKey: ApiKeyView | undefined, @Param('id') id: string): Promise<void> {
    const caller = writerOf(apiKey, this.routes);
    const target = await this.load(caller, id);
    if (!caller.admin) refuse(refusalForScopes(caller, target));
    await this.apiKeys.delete(target.id);
  }

  /**
   * Switches the key off (401 `disabled_api_key` from then on) without revoking it.
   * Disabling a disabled key changes nothing; a revoked key answers 409 `key_revoked`.
   */
  @Post(':id/disable')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  disable(
    @CurrentApiKey() apiKey: ApiKeyView | undefined,
    @Param('id') id: string,
    @Body() body: unknown,
    @Headers('if-match') ifMatch?: string,
  ): Promise<ApiKeyResource> {
    return this.setDisabled(apiKey, id, body, ifMatch, true);
  }

  /** Switches a disabled key back on. A revoked key answers 409 `key_revoked`: revocation is final. */
  @Post(':id/enable')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  enable(
    @CurrentApiKey() apiKey: ApiKeyView | undefined,
    @Param('id') id: string,
    @Body() body: unknown,
    @Headers('if-match') ifMatch?: string,
  ): Promise<ApiKeyResource> {
    return this.setDisabled(apiKey, id, body, ifMatch, false);
  }

  /** Disable and enable: allowed to a self-service key on exactly the keys it could revoke. */
  private async setDisabled(
    apiKey: ApiKeyView | undefined,
    id: string,
    body: unknown,
    ifMatch: string | undefined,
    disabled: boolean,
  ): Promise<ApiKeyResource> {
    const caller = writerOf(apiKey, this.routes);
    parseEmptyRequest(body);
    const target = await this.load(caller, id);
    if (!caller.admin) refuse(refusalForScopes(caller, target));
    const expectedVersion = expectedVersionFromIfMatch(ifMatch, target.id, target.version);
    const written = disabled
      ? await this.apiKeys.disable(target.id, { expectedVersion })
      : await this.apiKeys.enable(target.id, { expectedVersion });
    return toApiKeyResource(written);
  }

  /**
   * The key, if the caller may see it (`read`) or manage it (`write`, the default);
   * another owner's key is "not found" to a self-service caller.
   */
  private async load(caller: Caller, id: string, access: 'read' | 'write' = 'write'): Promise<ApiKeyView> {
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw new ApiKeyNotFoundError('');
    const found = await this.apiKeys.get(id);
    const everyOwner = access === 'read' ? caller.readsAll : caller.admin;
    if (!found || (!everyOwner && found.ownerId !== caller.ownerId)) throw new ApiKeyNotFoundError(id);
    return found;
  }
}
