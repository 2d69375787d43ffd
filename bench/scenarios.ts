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

/** Route of {@link rotatingPepperScenario}. */
export const ROTATING_PEPPER_ROUTE = 'memory-rotating';

/**
 * The memory route during a pepper rotation: a `pepper` and one `previousPeppers`
 * entry. A valid (current) key costs what it costs on `memory`; an unknown one costs one
 * more HMAC and lookup, which the `flood-unknown-rotating` case measures. Served only
 * when BENCH_CASES names one of its cases, so the default table is unchanged.
 */
export async function rotatingPepperScenario(): Promise<GuardedScenario> {
  const backend = new CountingMemoryBackend();
  const guarded = guardFor(backend, { pepper: 'bench-pepper-0123456789', previousPeppers: ['bench-old-pepper-0123456789'] });
  return {
    route: ROTATING_PEPPER_ROUTE,
    label: '(c) memory backend, pepper plus one previous pepper',
    ...guarded,
    primaryCalls: backend.counts,
    close: async () => undefined,
  };
}
