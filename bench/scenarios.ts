import { Reflector } from '@nestjs/core';
import { ApiKeyGuard, ApiKeyService, MemoryBackend, type ApiAuthModuleOptions, type ApiKeyBackend } from 'nestjs-api-auth';
import { resolveApiAuthOptions } from 'nestjs-api-auth/testing';
import type { CallCounts } from './counting.js';

/** One guarded route of the benchmark app and what it needs. */
export interface GuardedScenario {
  /** Route path, also the scenario's name in the table. */
  route: string;
  /** What the table calls it. */
  label: string;
  guard: ApiKeyGuard;
  service: ApiKeyService;
  /** Calls made to the primary store (PostgreSQL, Redis or memory). */
  primaryCalls: CallCounts;
  /** Distinct keys the route is sent, in turn (default 1). */
  keyCount?: number;
  close(): Promise<void>;
}

export const PREFIX = 'bench_';

/**
 * Builds a guard outside Nest's DI so one app can serve several backends side by
 * side; in an application the module does this.
 */
export function guardFor(backend: ApiKeyBackend, extra: Partial<ApiAuthModuleOptions> = {}) {
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
  readonly counts: CallCounts = { peekByHash: 0, getById: 0 };
  override peekByHash(keyHash: string) {
    this.counts.peekByHash!++;
    return super.peekByHash(keyHash);
  }
  override getById(id: string) {
    this.counts.getById!++;
    return super.getById(id);
  }
}

export async function memoryScenario(): Promise<GuardedScenario> {
  const backend = new CountingMemoryBackend();
  return { route: 'memory', label: '(c) ApiKeyGuard, memory backend', ...guardFor(backend), primaryCalls: backend.counts, close: async () => undefined };
}

/** Routes of {@link pepperScenarios}: a pepper alone, and a pepper with one previous pepper. */
export const PEPPERED_ROUTE = 'memory-peppered';
export const ROTATING_PEPPER_ROUTE = 'memory-rotating';

/**
 * The memory route with a `pepper`, without and with one `previousPeppers` entry: an
 * unknown key costs one more HMAC (and, unless the store knows the hash offline, one
 * more lookup) during a rotation, which the `flood-unknown-peppered` and
 * `flood-unknown-rotating` cases compare. Served only when BENCH_CASES names a pepper
 * case, so the default table is unchanged.
 */
export async function pepperScenarios(): Promise<GuardedScenario[]> {
  const pepper = 'bench-pepper-0123456789';
  return [
    { route: PEPPERED_ROUTE, label: '(c) memory backend, pepper', extra: {} },
    { route: ROTATING_PEPPER_ROUTE, label: '(c) memory backend, pepper plus one previous pepper', extra: { previousPeppers: ['bench-old-pepper-0123456789'] } },
  ].map(({ route, label, extra }) => {
    const backend = new CountingMemoryBackend();
    return { route, label, ...guardFor(backend, { pepper, ...extra }), primaryCalls: backend.counts, close: async () => undefined };
  });
}
