import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The browser tests: headless Chromium against the sample app. Kept out of `npm test`
// (the quick start must not need a browser); run with `npm run test:browser` or
// `.ci/browser.sh`, which installs Chromium when it is missing.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/browser/**/*.browser.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One browser at a time: each file starts its own Chromium and two apps.
    fileParallelism: false,
  },
});
