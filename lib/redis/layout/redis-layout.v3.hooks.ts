/**
 * Internal, for tests only: what a test injects into layout 3 through this symbol key
 * of `RedisBackend`'s options (a symbol key is no option: never validated, documented
 * or exported from the package). `afterStep` runs after every step of a multi-step
 * write, so a test can stop the writer there (throw, or kill its process) and look at
 * what a crash at that point leaves; `now` replaces the clock that pending marks are
 * stamped and judged with, so the grace period passes without sleeping.
 */
export const REDIS_LAYOUT_TEST_HOOKS = Symbol('RedisBackend layout test hooks');

export interface RedisLayoutTestHooks {
  now?: () => number;
  afterStep?: (operation: string, step: number) => void | Promise<void>;
}
