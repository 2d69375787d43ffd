import { ConsoleLogger, Injectable, Logger, type INestApplication } from '@nestjs/common';
import { EventEmitter2, EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import { EventEmitter } from 'node:events';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, type ApiKeyEvent } from 'nestjs-api-auth';
import { createEventSink } from '../../lib/events/api-key-event.sink.js';
import { turns } from '../fixtures/counter-release.suite.js';
import { CapturingLogger } from '../fixtures/log-capture.js';
import { bootPolicyApp, call } from '../fixtures/rate-limit.setups.js';

/** What each listener received, in delivery order. */
const received: string[] = [];

/** Listeners the README's way, one of them told not to swallow its errors. */
@Injectable()
class Listeners {
  @OnEvent('api-key.revoked', { suppressErrors: false })
  async rejects(): Promise<void> {
    received.push('OnEvent rejects');
    throw new Error('audit store down');
  }

  @OnEvent('api-key.*')
  everything(event: ApiKeyEvent) {
    received.push(`OnEvent * ${event.type}`);
  }
}

/** Rejections nobody handled while a test ran; the process would have died of any of them. */
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

/** The sink's error lines, without the logger's context suffix. */
const failures = (logger: CapturingLogger) =>
  logger.lines.filter((line) => line.includes('A listener of')).map((line) => line.replace(/( undefined)? ApiAuth$/, ''));

describe('event listeners cannot hurt the caller: EventEmitter2 wired as the README shows', () => {
  let app: INestApplication;
  let url: string;
  let service: ApiKeyService;
  let events: EventEmitter2;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    ({ app, url } = await bootPolicyApp(
      'express',
      ApiAuthModule.forRootAsync({
        inject: [EventEmitter2],
        useFactory: (emitter: EventEmitter2) => ({ prefix: 'el_', events: emitter }),
      }),
      { imports: [EventEmitterModule.forRoot({ wildcard: true })], providers: [Listeners] },
    ));
    app.useLogger(logger);
    service = app.get(ApiKeyService);
    events = app.get(EventEmitter2);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await app?.close();
  });
  beforeEach(() => {
    received.length = 0;
    unhandled.length = 0;
    logger.lines.length = 0;
  });
  /** Listeners a test added, removed after it (the @OnEvent ones stay). */
  const added: Array<[string, (...args: any[]) => unknown]> = [];
  const on = (name: string, listener: (...args: any[]) => unknown, prepend = false) => {
    if (prepend) events.prependListener(name, listener);
    else events.on(name, listener);
    added.push([name, listener]);
  };
  afterEach(() => {
    for (const [name, listener] of added.splice(0)) events.off(name, listener);
  });

  it('an async listener that rejects on api-key.revoked is logged by name and never becomes an unhandled rejection', async () => {
    on('api-key.revoked', async () => {
      received.push('on rejects');
      throw new TypeError('el_not-a-key but logged nowhere');
    });
    const { apiKey } = await service.issue({ ownerId: 'el', name: 'doomed' });
    const revoked = await service.revoke(apiKey.id);
    expect(revoked.revokedAt).not.toBeNull();
    await turns(5);
    expect(unhandled).toEqual([]);
    expect(received).toEqual(expect.arrayContaining(['on rejects', 'OnEvent rejects', 'OnEvent * api-key.revoked']));
    expect(failures(logger).sort()).toEqual([
      '[error] A listener of api-key.revoked failed (Error): an event listener, asynchronously; the others still received the event.',
      '[error] A listener of api-key.revoked failed (TypeError): an event listener, asynchronously; the others still received the event.',
    ]);
    expect(logger.lines.join('\n')).not.toContain('el_not-a-key');
  });

  it('a listener that throws synchronously does not keep the event from those after it', async () => {
    const { apiKey } = await service.issue({ ownerId: 'el', name: 'thrower' });
    received.length = 0;
    on(
      'api-key.revoked',
      () => {
        received.push('prepended throws');
        throw new RangeError('boom');
      },
      true,
    );
    on('api-key.revoked', () => received.push('on after the thrower'));
    events.onAny((type) => received.push(`any ${String(type)}`));
    try {
      await service.revoke(apiKey.id);
      await turns(5);
    } finally {
      events.offAny(events.listenersAny()[0]!);
    }
    // emit() order: onAny first, then the event's own listeners (the thrower first of them).
    expect(received[0]).toBe('any api-key.revoked');
    expect(received[1]).toBe('prepended throws');
    expect(received.slice(2).sort()).toEqual(['OnEvent * api-key.revoked', 'OnEvent rejects', 'on after the thrower']);
    expect(unhandled).toEqual([]);
    expect(failures(logger).sort()).toEqual([
      '[error] A listener of api-key.revoked failed (Error): an event listener, asynchronously; the others still received the event.',
      '[error] A listener of api-key.revoked failed (RangeError): an event listener; the others still received the event.',
    ]);
  });

  it('a rejecting listener fails neither the request nor the process on api-key.authentication-denied', async () => {
    on('api-key.authentication-denied', () => Promise.reject(new Error('metrics down')));
    expect((await call(url, '/p/ping', 'el_garbage')).status).toBe(401);
    expect((await call(url, '/p/ping', 'el_garbage')).status).toBe(401);
    await turns(5);
    expect(unhandled).toEqual([]);
    expect(failures(logger)).toHaveLength(2);
    expect(failures(logger)[0]).toContain('A listener of api-key.authentication-denied failed (Error): an event listener, asynchronously');
  });

  it('a once listener hears one event, as with emit()', async () => {
    const once = () => received.push('once');
    events.once('api-key.issued', once);
    added.push(['api-key.issued', once]);
    await service.issue({ ownerId: 'el', name: 'one' });
    await service.issue({ ownerId: 'el', name: 'two' });
    expect(received.filter((r) => r === 'once')).toEqual(['once']);
    expect(received.filter((r) => r === 'OnEvent * api-key.issued')).toHaveLength(2);
  });
});

describe('createEventSink with other emitters', () => {
  const logger = new CapturingLogger();
  const event = { type: 'api-key.deleted', id: 'k1', ownerId: 'o1', at: new Date() } as ApiKeyEvent;

  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
    // The sink logs through Nest's static logger, as it does inside an app.
    Logger.overrideLogger(logger);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    Logger.overrideLogger(new ConsoleLogger());
  });
  beforeEach(() => {
    unhandled.length = 0;
    logger.lines.length = 0;
  });

  async function deliver(emitter: Parameters<typeof createEventSink>[0]): Promise<string[]> {
    createEventSink(emitter)!(event);
    await turns(5);
    return failures(logger);
  }

  it("node's EventEmitter: a throwing and a rejecting listener, and the one after both still hears it", async () => {
    const emitter = new EventEmitter();
    const heard: string[] = [];
    emitter.on('api-key.deleted', () => {
      throw new Error('sync');
    });
    emitter.on('api-key.deleted', () => Promise.reject(new SyntaxError('async')));
    emitter.once('api-key.deleted', (e: ApiKeyEvent) => heard.push(e.type));
    const lines = await deliver(emitter);
    expect(heard).toEqual(['api-key.deleted']);
    expect(emitter.listenerCount('api-key.deleted')).toBe(2);
    expect(unhandled).toEqual([]);
    expect(lines).toEqual([
      '[error] A listener of api-key.deleted failed (Error): an event listener; the others still received the event.',
      '[error] A listener of api-key.deleted failed (SyntaxError): an event listener, asynchronously; the others still received the event.',
    ]);
  });

  it('an emitter that only has emit(): the log says that delivery stopped at the throwing listener', async () => {
    const lines = await deliver({
      emit: () => {
        throw new Error('first listener threw');
      },
    });
    expect(lines).toEqual([
      "[error] A listener of api-key.deleted failed (Error): inside the emitter's emit(), which stops at a throwing listener: those after it did not receive the event.",
    ]);
  });

  it('an emitter whose emit() returns a rejecting promise (emitAsync-like): caught and logged', async () => {
    const lines = await deliver({ emit: () => Promise.reject(new Error('x')) });
    expect(unhandled).toEqual([]);
    expect(lines).toEqual(["[error] A listener of api-key.deleted failed (Error): a promise returned by the emitter's emit()."]);
  });
});
