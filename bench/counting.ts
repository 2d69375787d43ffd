import type { ApiKeyBackend } from 'nestjs-api-auth';

/** Per-method call counts of a backend, read by the benchmark between runs. */
export type CallCounts = Record<string, number>;

/**
 * Wraps a backend so every call is counted: the benchmark reports how many primary
 * lookups each scenario caused (the database work an attacker's flood would cost).
 */
export function countCalls<B extends ApiKeyBackend>(backend: B): { backend: B; counts: CallCounts } {
  const counts: CallCounts = {};
  const proxy = new Proxy(backend, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return (...args: unknown[]) => {
        counts[property] = (counts[property] ?? 0) + 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { backend: proxy, counts };
}
