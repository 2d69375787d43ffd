import { describe, expect, it } from 'vitest';
import { MemoryBackend } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';

describe('resolveApiAuthOptions', () => {
  it('fills every default', () => {
    const resolved = resolveApiAuthOptions({});
    expect(resolved.backend).toBeInstanceOf(MemoryBackend);
    expect(resolved).toMatchObject({
      ownsBackend: true,
      prefix: 'sk_',
      pepper: null,
      header: 'x-api-key',
      bearer: true,
      queryParam: false,
      trackUsage: true,
      usageIntervalMs: 60_000,
      verifyTimeoutMs: 5_000,
      realm: 'api',
      maxMetadataBytes: 8_192,
      maxScopes: 100,
    });
  });

  it('keeps a user backend and marks it as not owned; lower-cases the header name', () => {
    const backend = new MemoryBackend();
    const resolved = resolveApiAuthOptions({ backend, header: 'X-Custom-Key', queryParam: 'api_key', realm: 'payments' });
    expect(resolved.backend).toBe(backend);
    expect(resolved.ownsBackend).toBe(false);
    expect(resolved.header).toBe('x-custom-key');
    expect(resolved.queryParam).toBe('api_key');
    expect(resolved.realm).toBe('payments');
  });

  it.each([[null], [undefined], ['prod_'], [42]])('refuses options that are not an object: %j', (options) => {
    expect(() => resolveApiAuthOptions(options as never)).toThrow(/ApiAuthModule options must be an object/);
  });

  const bad: Array<[string, unknown, RegExp?]> = [
    ['prefix', 'has-dash'],
    ['prefix', ''],
    ['prefix', 5],
    ['header', 'x api key'],
    ['header', ''],
    ['header', 42],
    ['header', 'Authorization', /use the "bearer" option/],
    ['queryParam', 'api key'],
    ['queryParam', true],
    ['queryParam', ''],
    ['backend', {}, /missing method "getByHash"/],
    ['backend', { getByHash() {}, getById() {}, create() {}, update() {}, delete() {}, listByOwner() {} }, /"recordUsage"/],
    ['backend', 'memory'],
    ['pepper', 12345],
    ['pepper', { secret: 'x' }],
    ['realm', 'with "quote"'],
    ['realm', ''],
    ['realm', 'ü'],
    ['bearer', 'yes'],
    ['trackUsage', 1],
    ['usageIntervalMs', -1],
    ['usageIntervalMs', 1.5],
    ['usageIntervalMs', '60000'],
    ['verifyTimeoutMs', Number.POSITIVE_INFINITY],
    ['maxMetadataBytes', 0],
    ['maxScopes', 0],
    ['maxScopes', -3],
  ];

  it.each(bad)('refuses %s = %j with a message naming the option', (option, value, detail) => {
    const attempt = () => resolveApiAuthOptions({ [option]: value } as never);
    expect(attempt).toThrow(new RegExp(`^nestjs-api-auth: option "${option}" `));
    if (detail) expect(attempt).toThrow(detail);
  });

  it('accepts the boundaries', () => {
    expect(() =>
      resolveApiAuthOptions({ usageIntervalMs: 0, verifyTimeoutMs: 0, maxMetadataBytes: 1, maxScopes: 1, bearer: false }),
    ).not.toThrow();
  });
});
