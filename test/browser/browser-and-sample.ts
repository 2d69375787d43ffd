import { afterAll, beforeAll } from 'vitest';
import { launchBrowser, type Browser } from './browser.js';
import { startSample, type Adapter, type RunningSample } from './sample-app.js';

/** What a browser test file drives: a headless Chromium and the sample app. */
export interface BrowserAndSample {
  browser: Browser;
  sample: RunningSample;
}

/**
 * Starts Chromium and the sample app on `adapter` before the enclosing `describe`'s
 * tests and closes both after them. Read the fields inside tests, not at declaration.
 */
export function useBrowserAndSample(adapter: Adapter): BrowserAndSample {
  const env = {} as BrowserAndSample;
  beforeAll(async () => {
    env.browser = await launchBrowser();
    env.sample = await startSample(adapter);
  });
  afterAll(async () => {
    await env.browser?.close();
    await env.sample?.close();
  });
  return env;
}
