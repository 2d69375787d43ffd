import { describe, expect, it } from 'vitest';
import { MemoryBackend, type ApiKey, type ApiKeyBackend } from 'nestjs-api-auth';
import { hasCallbackLookup, LOOK_UP_BY_HASH } from '../../lib/verification/lookup-callbacks.js';

/** A backend answering lookups through callbacks too, as RedisBackend does. */
class CallbackBackend extends MemoryBackend {
  [LOOK_UP_BY_HASH](keyHash: string, onRecord: (record: ApiKey | null) => void, onError: (error: unknown) => void): void {
    this.getByHash(keyHash).then(onRecord, onError);
  }
}

describe('hasCallbackLookup', () => {
  it('uses the callbacks only where getByHash is the one they stand for', () => {
    const backend = new CallbackBackend();
    expect(hasCallbackLookup(backend)).toBe(true);
    expect(hasCallbackLookup(new MemoryBackend())).toBe(false);

    // Whoever puts a getByHash of their own in front gets it called.
    const wrapped = Object.create(backend) as ApiKeyBackend;
    wrapped.getByHash = (hash) => backend.getByHash(hash);
    expect(hasCallbackLookup(wrapped)).toBe(false);
    class Logged extends CallbackBackend {
      override getByHash(hash: string) {
        return super.getByHash(hash);
      }
    }
    expect(hasCallbackLookup(new Logged())).toBe(false);
    const proxied = new Proxy(backend, { get: (target, p) => (p === 'getByHash' ? (h: string) => target.getByHash(h) : Reflect.get(target, p)) });
    expect(hasCallbackLookup(proxied)).toBe(false);

    // A subclass overriding both keeps them paired.
    class Counted extends CallbackBackend {
      override getByHash(hash: string) {
        return super.getByHash(hash);
      }
      override [LOOK_UP_BY_HASH](keyHash: string, onRecord: (record: ApiKey | null) => void, onError: (error: unknown) => void) {
        super[LOOK_UP_BY_HASH](keyHash, onRecord, onError);
      }
    }
    expect(hasCallbackLookup(new Counted())).toBe(true);
  });
});
