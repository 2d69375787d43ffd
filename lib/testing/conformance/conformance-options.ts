import type { ApiKey } from '../../api-key.interface.js';
import type { ApiKeyBackend } from '../../backends/backend.interface.js';

export type TestFn = (name: string, fn: (context?: unknown) => Promise<void> | void, timeout?: number) => unknown;
type HookFn = (fn: () => Promise<void> | void, timeout?: number) => unknown;

/** The test runner's functions; Vitest, Jest and `node:test` all fit. */
export interface ConformanceRunner {
  describe: (name: string, fn: () => void) => unknown;
  it: TestFn;
  beforeAll: HookFn;
  afterAll: HookFn;
}

/** The backend under test, set once the suite's `beforeAll` has built it. */
export interface ConformanceSuite<B extends ApiKeyBackend> {
  backend: B;
}

/** How to build the backend under test. */
export interface BackendConformanceOptions<B extends ApiKeyBackend = ApiKeyBackend> {
  /** Creates the backend (once for the suite). Each test uses fresh owner ids, so no clearing is needed. */
  create: () => B | Promise<B>;
  /** Releases what `create` opened. */
  destroy?: (backend: B) => void | Promise<void>;
  /** Concurrency used by the race tests. Default 50. */
  concurrency?: number;
  /** Interleaved pairs of updates of different fields in the lost-update test. Default 200. */
  updatePairs?: number;
  /**
   * Stores `record` the way a store written before `version`, `issuedById` and
   * `disabledAt` existed holds it (without those fields). When given, the suite checks
   * such a record reads as version 1 with no issuer, enabled, and updates from there.
   */
  storeLegacyRecord?: (backend: B, record: Omit<ApiKey, 'version' | 'issuedById' | 'disabledAt'>) => Promise<void>;
}
