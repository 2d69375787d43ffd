import { Injectable, type INestApplication } from '@nestjs/common';
import { EventEmitter2, EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyEventName, ApiKeyService, type ApiKeyEvent } from 'nestjs-api-auth';
import { ADAPTERS } from '../fixtures/app.js';
import { CapturingLogger } from '../fixtures/log-capture.js';
import { bootPolicyApp, call, makeSetup, SETUP_NAMES, type Setup } from '../fixtures/rate-limit.setups.js';

/** Collects every library event delivered through @nestjs/event-emitter. */
@Injectable()
class EventLog {
  readonly events: ApiKeyEvent[] = [];

  @OnEvent('api-key.*')
  record(event: ApiKeyEvent) {
    this.events.push(event);
  }
}

const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

describe.each(ADAPTERS)('key events through @nestjs/event-emitter over %s', (adapter) => {
  describe.each(SETUP_NAMES)('on the %s setup', (setupName) => {
    let setup: Setup;
    let app: INestApplication;
    let url: string;
    let service: ApiKeyService;
    let log: EventLog;
    const hooked: ApiKeyEvent[] = [];
    /** Every plaintext key this test handled, and so every value no event may contain. */
    const secrets: string[] = [];

    beforeAll(async () => {
      setup = await makeSetup(setupName, `events-${adapter}`);
      const storage = setup.create();
      ({ app, url } = await bootPolicyApp(
        adapter,
        ApiAuthModule.forRootAsync({
          inject: [EventEmitter2],
          useFactory: (events: EventEmitter2) => ({ prefix: 'ev_', events, onEvent: (e) => hooked.push(e), ...storage }),
        }),
        { imports: [EventEmitterModule.forRoot({ wildcard: true })], providers: [EventLog] },
      ));
      service = app.get(ApiKeyService);
      log = app.get(EventLog);
    });
    afterAll(async () => {
      await app?.close();
      await setup?.cleanup();
    });

    const ofType = (type: string) => log.events.filter((e) => e.type === type);

    it('fires each lifecycle event once, with the record and never a secret', async () => {
      const issued = await service.issue({ ownerId: 'ev-owner', name: 'first', scopes: ['things:read'] });
      secrets.push(issued.key);
      expect(ofType(ApiKeyEventName.Issued)).toEqual([{ type: 'api-key.issued', apiKey: issued.apiKey, at: expect.any(Date) }]);

      const updated = await service.update(issued.apiKey.id, { name: 'renamed', policy: { rateLimits: [{ name: 'b', limit: 1, windowMs: 60_000 }] } });
      expect(ofType(ApiKeyEventName.Updated)).toEqual([
        { type: 'api-key.updated', apiKey: updated, changed: ['name', 'policy'], at: expect.any(Date) },
      ]);

      const rotated = await service.rotate(issued.apiKey.id, { gracePeriodMs: 60_000 });
      secrets.push(rotated.key);
      expect(ofType(ApiKeyEventName.Rotated)).toEqual([
        { type: 'api-key.rotated', apiKey: rotated.apiKey, previous: rotated.previous, at: expect.any(Date) },
      ]);
      // A rotation is not also an issue.
      expect(ofType(ApiKeyEventName.Issued)).toHaveLength(1);

      const revoked = await service.revoke(rotated.apiKey.id);
      await service.revoke(rotated.apiKey.id);
      expect(ofType(ApiKeyEventName.Revoked)).toEqual([{ type: 'api-key.revoked', apiKey: revoked, at: expect.any(Date) }]);

      await service.delete(issued.apiKey.id);
      await service.delete(issued.apiKey.id);
      expect(ofType(ApiKeyEventName.Deleted)).toEqual([
        { type: 'api-key.deleted', id: issued.apiKey.id, ownerId: 'ev-owner', at: expect.any(Date) },
      ]);

      const foreign = service.format.generate();
      secrets.push(foreign);
      const imported = await service.import({ key: foreign }, { ownerId: 'ev-owner', name: 'imported' });
      expect(ofType(ApiKeyEventName.Imported)).toEqual([{ type: 'api-key.imported', apiKey: imported, at: expect.any(Date) }]);
    });

    it('fires authentication-denied once per refusal, with the code, and the key id only once it was verified', async () => {
      const before = ofType(ApiKeyEventName.AuthenticationDenied).length;
      const limited = await service.issue({
        ownerId: 'ev-denied',
        name: 'limited',
        scopes: [],
        policy: { rateLimits: [{ name: 'one', limit: 1, windowMs: 60_000 }] },
      });
      const fenced = await service.issue({ ownerId: 'ev-denied', name: 'fenced', policy: { allowedIps: ['10.0.0.0/8'] } });
      const gone = await service.issue({ ownerId: 'ev-denied', name: 'gone' });
      secrets.push(limited.key, fenced.key, gone.key);
      await service.revoke(gone.apiKey.id);

      expect((await call(url, '/p/ping', undefined)).status).toBe(401);
      expect((await call(url, '/p/ping', 'ev_not-a-key')).status).toBe(401);
      expect((await call(url, '/p/ping', gone.key)).status).toBe(401);
      expect((await call(url, '/p/scoped', limited.key)).status).toBe(403);
      expect((await call(url, '/p/ping', limited.key)).status).toBe(200);
      expect((await call(url, '/p/ping', limited.key)).status).toBe(429);
      expect((await call(url, '/p/ping', fenced.key)).status).toBe(403);

      const denied = ofType(ApiKeyEventName.AuthenticationDenied).slice(before);
      expect(denied.map((e) => ({ ...e, at: undefined }))).toEqual([
        { type: 'api-key.authentication-denied', code: 'missing_api_key', status: 401, apiKeyId: null, ownerId: null, at: undefined },
        { type: 'api-key.authentication-denied', code: 'invalid_api_key', status: 401, apiKeyId: null, ownerId: null, at: undefined },
        { type: 'api-key.authentication-denied', code: 'revoked_api_key', status: 401, apiKeyId: null, ownerId: null, at: undefined },
        { type: 'api-key.authentication-denied', code: 'insufficient_scope', status: 403, apiKeyId: limited.apiKey.id, ownerId: 'ev-denied', at: undefined },
        { type: 'api-key.authentication-denied', code: 'rate_limited', status: 429, apiKeyId: limited.apiKey.id, ownerId: 'ev-denied', at: undefined },
        { type: 'api-key.authentication-denied', code: 'ip_not_allowed', status: 403, apiKeyId: fenced.apiKey.id, ownerId: 'ev-denied', at: undefined },
      ]);
      for (const event of denied) expect(event.at).toBeInstanceOf(Date);
    });

    it('delivers the same events to the onEvent hook, and none carries a key, a hash or a secret part', () => {
      expect(hooked).toEqual(log.events);
      expect(log.events.length).toBeGreaterThan(10);
      const dump = JSON.stringify(log.events);
      expect(secrets.length).toBeGreaterThanOrEqual(6);
      for (const key of secrets) {
        expect(dump).not.toContain(key);
        expect(dump).not.toContain(sha256(key));
        // Nor the secret body without its prefix and checksum.
        expect(dump).not.toContain(key.slice(3, 30));
      }
      expect(dump).not.toMatch(/keyHash/);
    });
  });
});

describe('a listener that fails', () => {
  let app: INestApplication;
  let url: string;
  let service: ApiKeyService;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    ({ app, url } = await bootPolicyApp('express', {
      prefix: 'ev_',
      events: {
        emit: () => {
          throw new Error('listener exploded with ev_secret-looking-text');
        },
      },
      onEvent: () => Promise.reject(new Error('async listener failed')),
    }));
    app.useLogger(logger);
    service = app.get(ApiKeyService);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('fails neither the operation nor the request, and is logged by error name only', async () => {
    const { key, apiKey } = await service.issue({ ownerId: 'boom', name: 'boom' });
    expect((await call(url, '/p/ping', key)).status).toBe(200);
    expect((await call(url, '/p/ping', 'ev_garbage')).status).toBe(401);
    await service.revoke(apiKey.id);
    await new Promise((resolve) => setImmediate(resolve));
    const failures = logger.lines
      .filter((line) => line.includes('A listener of'))
      .map((line) => line.match(/A listener of (\S+) failed \((\w+)\)/)!.slice(1).join(' '));
    // Both the throwing emitter and the rejecting hook, for each of the three events.
    expect(failures).toEqual([
      'api-key.issued Error',
      'api-key.issued Error',
      'api-key.authentication-denied Error',
      'api-key.authentication-denied Error',
      'api-key.revoked Error',
      'api-key.revoked Error',
    ]);
    expect(logger.lines.join('\n')).not.toContain('secret-looking');
  });
});
