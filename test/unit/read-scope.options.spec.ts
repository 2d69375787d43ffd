import { describe, expect, it } from 'vitest';
import { resolveApiAuthRoutesOptions } from '../../lib/management/api-auth-routes.options.js';

describe('routes.readScope', () => {
  it('defaults to api-keys:read, can be renamed or turned off with null', () => {
    expect(resolveApiAuthRoutesOptions(true)?.readScope).toBe('api-keys:read');
    expect(resolveApiAuthRoutesOptions({ readScope: 'keys:audit' })?.readScope).toBe('keys:audit');
    expect(resolveApiAuthRoutesOptions({ readScope: null })?.readScope).toBeNull();
  });

  it('refuses a read scope equal to a writing scope, or not a scope at all', () => {
    expect(() => resolveApiAuthRoutesOptions({ readScope: 'api-keys:admin' })).toThrow(/"routes.readScope" must differ/);
    expect(() => resolveApiAuthRoutesOptions({ selfServiceScope: 'x', readScope: 'x' })).toThrow(/must differ/);
    expect(() => resolveApiAuthRoutesOptions({ readScope: 'has space' })).toThrow(/routes.readScope/);
  });
});
