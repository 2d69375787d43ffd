import { HttpException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { describe, expect, it } from 'vitest';
import { ApiKeyGuard, ApiKeyService, MemoryBackend } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';

// Fail closed: a key with an allowlist is refused on a WebSocket whose address is
// unknown (a closed socket, a transport that reports none), even when its list
// allows every address; a key without one is still served from the same client.

class Gateway {
  handle(): void {}
}

function wsContext(client: Record<string, unknown>) {
  const context = new ExecutionContextHost([client, {}], Gateway, Gateway.prototype.handle);
  context.setType('ws');
  return context;
}

async function setup() {
  const options = resolveApiAuthOptions({ backend: new MemoryBackend(), prefix: 'gip_' });
  const service = new ApiKeyService(options);
  const guard = new ApiKeyGuard(new Reflector(), service, options);
  const everywhere = await service.issue({ ownerId: 'o', name: 'anywhere', policy: { allowedIps: ['0.0.0.0/0', '::/0'] } });
  const unrestricted = await service.issue({ ownerId: 'o', name: 'open', scopes: [] });
  return { guard, everywhere: everywhere.key, unrestricted: unrestricted.key };
}

describe('ApiKeyGuard on a WebSocket client', () => {
  it('serves an allowlisted key from the address of the connection', async () => {
    const { guard, everywhere } = await setup();
    const client = { _socket: { remoteAddress: '::1' }, request: { headers: { 'x-api-key': everywhere } } };
    expect(await guard.canActivate(wsContext(client))).toBe(true);
  });

  it.each([
    ['a closed ws socket', (key: string) => ({ _socket: {}, request: { socket: {}, headers: { 'x-api-key': key } } })],
    ['a client with no socket', (key: string) => ({ request: { headers: { 'x-api-key': key, 'x-forwarded-for': '127.0.0.1' } } })],
    ['a socket.io handshake without an address', (key: string) => ({ handshake: { headers: { 'x-api-key': key } } })],
  ])('refuses an allowlisted key with 403 ip_not_allowed when the address is unknown: %s', async (_name, client) => {
    const { guard, everywhere, unrestricted } = await setup();
    const error = await Promise.resolve()
      .then(() => guard.canActivate(wsContext(client(everywhere))))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpException);
    expect((error as HttpException).getResponse()).toMatchObject({ statusCode: 403, code: 'ip_not_allowed' });
    // The same client with a key that has no allowlist: only the address was missing.
    expect(await guard.canActivate(wsContext(client(unrestricted)))).toBe(true);
  });
});
