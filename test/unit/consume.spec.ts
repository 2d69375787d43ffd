import { describe, expect, it } from 'vitest';
import {
  ApiKeyNotFoundError,
  ApiKeyValidationError,
  BackendUnavailableError,
  MemoryRateLimiter,
  RateLimiterCapabilityError,
  type ApiKeyEvent,
  type RateLimiter,
} from 'nestjs-api-auth';
import { makeService } from '../fixtures/service.js';

const minute = { name: 'minute', limit: 3, windowMs: 60_000 };

function setup(options: { rateLimiter?: RateLimiter } = {}) {
  const events: ApiKeyEvent[] = [];
  const made = makeService({ environment: 'live', acceptEnvironments: ['live', 'test'], onEvent: (e) => events.push(e), ...options });
  return { ...made, events };
}

describe('ApiKeyService.consume: the guard\'s decision outside HTTP', () => {
  it('refuses what the guard refuses before any lookup, with the same codes, and never rejects', async () => {
    const { service, backend } = setup();
    expect(await service.consume('')).toMatchObject({ ok: false, code: 'missing_api_key', status: 401, apiKey: null });
    expect(await service.consume(undefined as never)).toMatchObject({ ok: false, code: 'missing_api_key' });
    expect(await service.consume('not-a-key')).toMatchObject({ ok: false, code: 'invalid_api_key', status: 401 });
    expect(backend.calls.getByHash ?? 0).toBe(0);
  });

  it('refuses a revoked and an expired key, and passes a valid one with no limits', async () => {
    const { service } = setup();
    const revoked = await service.issue({ ownerId: 'o', name: 'r' });
    await service.revoke(revoked.apiKey.id);
    expect(await service.consume(revoked.key)).toMatchObject({ ok: false, code: 'revoked_api_key', status: 401 });
    const valid = await service.issue({ ownerId: 'o', name: 'v' });
    expect(await service.consume(valid.key)).toEqual({ ok: true, apiKey: expect.objectContaining({ id: valid.apiKey.id }), rateLimit: null, quota: null });
  });

  it('checks the IP allowlist against options.ip, refusing a key with an allowlist when no address is given', async () => {
    const { service } = setup();
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'ip', policy: { allowedIps: ['10.0.0.0/8'] } });
    expect(await service.consume(key, { ip: '10.1.2.3' })).toMatchObject({ ok: true });
    expect(await service.consume(key, { ip: '192.0.2.1' })).toMatchObject({ ok: false, code: 'ip_not_allowed', status: 403, apiKey: { id: apiKey.id } });
    expect(await service.consume(key)).toMatchObject({ ok: false, code: 'ip_not_allowed' });
  });

  it('checks the environment and scopes asked for, patterns included', async () => {
    const { service } = setup();
    const { key } = await service.issue({ ownerId: 'o', name: 'env', environment: 'test', scopes: ['jobs:*'] });
    expect(await service.consume(key, { environment: 'live' })).toMatchObject({ ok: false, code: 'environment_not_allowed', status: 403 });
    expect(await service.consume(key, { environment: ['live', 'test'] })).toMatchObject({ ok: true });
    expect(await service.consume(key, { scopes: ['jobs:run', 'jobs:cancel'] })).toMatchObject({ ok: true });
    expect(await service.consume(key, { scopes: ['billing:read'] })).toMatchObject({ ok: false, code: 'insufficient_scope', status: 403 });
  });

  it('counts rate limits and spends the quota by cost, refusing with 429 codes and retry times', async () => {
    const { service } = setup();
    const limited = await service.issue({ ownerId: 'o', name: 'rl', policy: { rateLimits: [minute] } });
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await service.consume(limited.key));
    expect(outcomes.map((o) => o.ok)).toEqual([true, true, true, false]);
    expect(outcomes[2]).toMatchObject({ ok: true, rateLimit: { name: 'minute', remaining: 0 } });
    expect(outcomes[3]).toMatchObject({ ok: false, code: 'rate_limited', status: 429, retryAfterMs: expect.any(Number) });

    const credits = await service.issue({ ownerId: 'o', name: 'q', policy: { quota: { limit: 10 } } });
    expect(await service.consume(credits.key, { cost: 7 })).toMatchObject({ ok: true, quota: { remaining: 3 } });
    expect(await service.consume(credits.key, { cost: 4 })).toMatchObject({ ok: false, code: 'quota_exhausted', status: 429, retryAfterMs: null });
    expect(await service.consume(credits.key, { cost: 0 })).toMatchObject({ ok: true, quota: { remaining: 3 } });
    expect(await service.consume(credits.key, { cost: 3 })).toMatchObject({ ok: true, quota: { remaining: 0 } });
  });

  it('verify applies no policy; consume does', async () => {
    const { service } = setup();
    const { key } = await service.issue({ ownerId: 'o', name: 'v', policy: { quota: { limit: 1 }, allowedIps: ['10.0.0.1'] } });
    for (let i = 0; i < 5; i++) expect(await service.verify(key)).not.toBeNull();
    expect(await service.consume(key, { ip: '10.0.0.1' })).toMatchObject({ ok: true });
    expect(await service.consume(key, { ip: '10.0.0.1' })).toMatchObject({ ok: false, code: 'quota_exhausted' });
  });

  it('answers 503 backend_unavailable, without rejecting, when the limiter fails', async () => {
    const failing: RateLimiter = { consume: () => Promise.reject(new BackendUnavailableError('limiter down')) };
    const { service } = setup({ rateLimiter: failing });
    const { key } = await service.issue({ ownerId: 'o', name: 'd', policy: { quota: { limit: 5 } } });
    const outcome = await service.consume(key);
    expect(outcome).toMatchObject({ ok: false, code: 'backend_unavailable', status: 503 });
    expect(!outcome.ok && outcome.error).toBeInstanceOf(BackendUnavailableError);
  });

  it('emits api-key.authentication-denied for a refusal, as the guard does', async () => {
    const { service, events } = setup();
    const { key, apiKey } = await service.issue({ ownerId: 'o', name: 'e', policy: { allowedIps: ['10.0.0.1'] } });
    await service.consume(key, { ip: '10.0.0.2' });
    expect(events.at(-1)).toMatchObject({ type: 'api-key.authentication-denied', code: 'ip_not_allowed', status: 403, apiKeyId: apiKey.id, ownerId: 'o' });
  });

  it('throws ApiKeyValidationError for invalid options only', async () => {
    const { service } = setup();
    const { key } = await service.issue({ ownerId: 'o', name: 'x' });
    await expect(service.consume(key, { cost: -1 })).rejects.toThrow(ApiKeyValidationError);
    await expect(service.consume(key, { cost: 1.5 })).rejects.toThrow(ApiKeyValidationError);
    await expect(service.consume(key, { environment: [] })).rejects.toThrow(ApiKeyValidationError);
    await expect(service.consume(key, { scopes: [] })).rejects.toThrow(ApiKeyValidationError);
    await expect(service.consume(key, { ip: 7 as never })).rejects.toThrow(ApiKeyValidationError);
  });
});

describe('ApiKeyService.getUsage and adjustQuota', () => {
  it('reads the balance and windows without spending, and sets and tops up the balance with an event', async () => {
    const { service, events } = setup();
    const { key, apiKey } = await service.issue({
      ownerId: 'o',
      name: 'u',
      policy: { rateLimits: [minute], quota: { limit: 10, refillIntervalMs: 86_400_000 } },
    });
    await service.consume(key, { cost: 4 });
    const usage = await service.getUsage(apiKey.id);
    expect(usage).toMatchObject({ apiKeyId: apiKey.id, quota: { limit: 10, remaining: 6 }, rateLimits: [{ name: 'minute', limit: 3, remaining: 2 }] });
    // The next 00:00 UTC, up to the milliseconds between reading the clock and the counters.
    const midnight = Math.floor(usage.at.getTime() / 86_400_000 + 1) * 86_400_000;
    expect(Math.abs(usage.quota!.refillsAt!.getTime() - midnight)).toBeLessThan(1_000);
    expect((await service.getUsage(apiKey.id)).quota?.remaining).toBe(6);

    expect(await service.adjustQuota(apiKey.id, { set: 50 })).toMatchObject({ limit: 10, remaining: 50 });
    expect(await service.adjustQuota(apiKey.id, { add: 5 })).toMatchObject({ remaining: 55 });
    expect(events.filter((e) => e.type === 'api-key.quota-changed')).toEqual([
      { type: 'api-key.quota-changed', apiKeyId: apiKey.id, ownerId: 'o', change: { set: 50 }, remaining: 50, at: expect.any(Date) },
      { type: 'api-key.quota-changed', apiKeyId: apiKey.id, ownerId: 'o', change: { add: 5 }, remaining: 55, at: expect.any(Date) },
    ]);
    expect(await service.consume(key, { cost: 55 })).toMatchObject({ ok: true, quota: { remaining: 0 } });
  });

  it('gives a key without limits an empty usage, and refuses to change the balance it does not have', async () => {
    const { service } = setup();
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'plain' });
    expect(await service.getUsage(apiKey.id)).toMatchObject({ quota: null, rateLimits: [] });
    await expect(service.adjustQuota(apiKey.id, { set: 1 })).rejects.toThrow(ApiKeyValidationError);
  });

  it('refuses bad changes and unknown ids', async () => {
    const { service } = setup();
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'q', policy: { quota: { limit: 1 } } });
    for (const bad of [{}, { set: 1, add: 1 }, { set: -1 }, { set: 1.5 }, { add: '1' }, { take: 1 }, null, [1]]) {
      await expect(service.adjustQuota(apiKey.id, bad as never), JSON.stringify(bad)).rejects.toThrow(ApiKeyValidationError);
    }
    await expect(service.getUsage('00000000-0000-4000-8000-000000000000')).rejects.toThrow(ApiKeyNotFoundError);
    await expect(service.adjustQuota('00000000-0000-4000-8000-000000000000', { set: 1 })).rejects.toThrow(ApiKeyNotFoundError);
  });

  it('names the missing method of a custom limiter', async () => {
    const custom: RateLimiter = { consume: (k, r) => new MemoryRateLimiter().consume(k, r) };
    const { service } = setup({ rateLimiter: custom });
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'c', policy: { quota: { limit: 1 } } });
    await expect(service.getUsage(apiKey.id)).rejects.toThrow(RateLimiterCapabilityError);
    await expect(service.adjustQuota(apiKey.id, { add: 1 })).rejects.toThrow(/no adjustQuota\(\) method/);
  });
});
