import { Reflector } from '@nestjs/core';
import { ApiKeyGuard, ApiKeyService, MemoryBackend } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
export const PREFIX = 'bench_';
/**
 * Builds a guard outside Nest's DI so one app can serve several backends side by
 * side; in an application the module does this.
 */
export function guardFor(backend, extra = {}) {
    const options = resolveApiAuthOptions({ backend, prefix: PREFIX, ...extra });
    const service = new ApiKeyService(options);
    const guard = new ApiKeyGuard(new Reflector(), service, options);
    return { guard, service };
}
/**
 * `MemoryBackend` counting its reads itself rather than behind the counting Proxy: a
 * hit is answered by `peekByHash`, synchronously, and a Proxy trap on that path would
 * be the benchmark's cost, not the library's. (`getByHash` is not overridden: that
 * would turn the fast path off. With the fast path on, it is never called.)
 */
class CountingMemoryBackend extends MemoryBackend {
    counts = { peekByHash: 0, getById: 0 };
    peekByHash(keyHash) {
        this.counts.peekByHash++;
        return super.peekByHash(keyHash);
    }
    getById(id) {
        this.counts.getById++;
        return super.getById(id);
    }
}
export async function memoryScenario() {
    const backend = new CountingMemoryBackend();
    return { route: 'memory', label: '(c) ApiKeyGuard, memory backend', ...guardFor(backend), primaryCalls: backend.counts, close: async () => undefined };
}
