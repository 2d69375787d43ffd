import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

// The real-cluster tests (`.ci/cluster.sh` starts the cluster first). One file at a
// time: the failover tests kill nodes, which would disturb a file running beside them.
export default mergeConfig(
  base,
  defineConfig({
    test: {
      include: ['test/cluster/**/*.cluster.ts'],
      fileParallelism: false,
      testTimeout: 60_000,
      hookTimeout: 60_000,
    },
  }),
  true,
);
