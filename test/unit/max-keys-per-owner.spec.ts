import { describe, expect, it } from 'vitest';
import { ApiKeyLimitReachedError, type ApiKeyEvent } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { makeService } from '../fixtures/service.js';

describe('maxKeysPerOwner', () => {
  it('defaults to 1000, takes null for none, and refuses anything but a positive integer at start-up', () => {
    expect(resolveApiAuthOptions({}).maxKeysPerOwner).toBe(1000);
    expect(resolveApiAuthOptions({ maxKeysPerOwner: null }).maxKeysPerOwner).toBeNull();
    expect(resolveApiAuthOptions({ maxKeysPerOwner: 5 }).maxKeysPerOwner).toBe(5);
    for (const bad of [0, -1, 1.5, '10', Number.POSITIVE_INFINITY]) {
      expect(() => resolveApiAuthOptions({ maxKeysPerOwner: bad as number })).toThrow(/maxKeysPerOwner/);
    }
    expect(() => resolveApiAuthOptions({ maxKeysPerOwnr: 5 } as never)).toThrow(/maxKeysPerOwner/);
  });

  it('refuses one more key on issue, import and rotate with ApiKeyLimitReachedError, storing and emitting nothing', async () => {
    const events: ApiKeyEvent[] = [];
    const { service, backend } = makeService({ maxKeysPerOwner: 3, onEvent: (e) => events.push(e) });
    const first = await service.issue({ ownerId: 'o', name: '1' });
    await service.issue({ ownerId: 'o', name: '2' });
    const third = await service.issue({ ownerId: 'o', name: '3' });
    await service.revoke(third.apiKey.id);
    const emitted = events.length;
    const creates = backend.calls.create;

    const refusals = [
      service.issue({ ownerId: 'o', name: '4' }),
      service.import({ keyHash: 'b'.repeat(64) }, { ownerId: 'o', name: 'imported' }),
      service.rotate(first.apiKey.id, { gracePeriodMs: 60_000 }),
    ];
    for (const refusal of refusals) {
      const error = await refusal.then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(ApiKeyLimitReachedError);
      expect(error).toMatchObject({ code: 'key_limit_reached', limit: 3 });
      expect((error as Error).message).not.toContain('"o"');
    }
    expect(backend.calls.create).toBe(creates);
    expect(events.length).toBe(emitted);
    expect(await service.countByOwner('o')).toBe(3);
    // The rotation was refused before it touched the old key.
    expect((await service.get(first.apiKey.id))?.expiresAt).toBeNull();

    // Another owner is unaffected; a revoked key counts until it is deleted.
    await service.issue({ ownerId: 'other', name: '1' });
    await service.delete(third.apiKey.id);
    await expect(service.issue({ ownerId: 'o', name: '4' })).resolves.toMatchObject({ apiKey: { name: '4' } });
  });

  it('with null, counts nothing', async () => {
    const { service } = makeService({ maxKeysPerOwner: null });
    let counted = 0;
    const count = service.countByOwner.bind(service);
    service.countByOwner = (ownerId) => {
      counted++;
      return count(ownerId);
    };
    for (let i = 0; i < 5; i++) await service.issue({ ownerId: 'o', name: `${i}` });
    expect(counted).toBe(0);
    expect(await count('o')).toBe(5);
  });
});
