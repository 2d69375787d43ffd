import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The real-cluster tests (`.ci/cluster.sh` starts the cluster first), with the main
// config's plugins and aliases. Not `mergeConfig`: it would append to `include` and
// run the whole suite. One file at a time: the failover tests kill nodes, which would
// disturb a file running beside them.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/cluster/**/*.cluster.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
