import { Catch, HttpException, type ArgumentsHost, type ExceptionFilter, type INestApplication } from '@nestjs/common';
import { APP_FILTER, HttpAdapterHost } from '@nestjs/core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';

// Refusals are HttpExceptions built without the Error constructor, each with its own
// body (lib/transport/refusal-exception.ts). An app's own @Catch(HttpException) filter must see
// them as usual and may add to the body it is given, with nothing carried over to
// another request's answer.

let sequence = 0;

@Catch(HttpException)
class RequestIdFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: HttpException, host: ArgumentsHost): void {
    const body = exception.getResponse() as Record<string, unknown>;
    // Mutates what it was given, as filters that decorate Nest's body do.
    body.requestId = `req-${++sequence}`;
    body.seenBefore = body.seenBefore === undefined ? false : true;
    this.adapterHost.httpAdapter.reply(host.switchToHttp().getResponse(), body, exception.getStatus());
  }
}

describe.each(ADAPTERS)('refusals through an app exception filter (%s)', (adapter) => {
  let app: INestApplication;
  let key: string;

  beforeAll(async () => {
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: 'rf_' })], {
      providers: [{ provide: APP_FILTER, useClass: RequestIdFilter }],
    });
    key = (await app.get(ApiKeyService).issue({ ownerId: 'o', name: 'n' })).key;
  });
  afterAll(() => app?.close());

  it('hands the filter an HttpException with its own fresh body, every time', async () => {
    const server = app.getHttpServer();
    const malformed = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    const answers = [];
    for (const headers of [{}, { 'x-api-key': malformed }, { 'x-api-key': malformed }, {}]) {
      const response = await request(server).get('/t/me').set(headers);
      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toMatch(/^ApiKey realm="api"/);
      answers.push(response.body as Record<string, unknown>);
    }
    expect(answers.map((a) => a.code)).toEqual(['missing_api_key', 'invalid_api_key', 'invalid_api_key', 'missing_api_key']);
    // Each body went through the filter once: no request id, no flag, from another request.
    expect(answers.every((a) => a.seenBefore === false)).toBe(true);
    expect(new Set(answers.map((a) => a.requestId)).size).toBe(4);
    expect(answers[1]).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      code: 'invalid_api_key',
      message: 'The API key is not valid.',
      requestId: answers[1]!.requestId,
      seenBefore: false,
    });
  });

  it('still lets a valid key through', async () => {
    const response = await request(app.getHttpServer()).get('/t/me').set('x-api-key', key);
    expect(response.status).toBe(200);
    expect(response.body.ownerId).toBe('o');
  });
});
