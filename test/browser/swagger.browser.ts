import { describe, expect, it } from 'vitest';
import { useBrowserAndSample } from './browser-and-sample.js';
import type { Adapter } from './sample-app.js';

type Page = Awaited<ReturnType<ReturnType<typeof useBrowserAndSample>['browser']['context']['newPage']>>;
type Locator = ReturnType<Page['locator']>;

/** Fills `key` into the Authorize dialog's scheme block `scheme` and closes it once applied. */
async function authorize(scheme: Locator, key: string): Promise<void> {
  await scheme.locator('input').fill(key);
  // Swagger UI labels its per-scheme "Authorize" button "Apply credentials".
  await scheme.getByRole('button', { name: 'Apply credentials' }).click();
  await scheme.locator('button', { hasText: 'Logout' }).waitFor();
  await scheme.locator('button', { hasText: 'Close' }).click();
}

/** Runs "Try it out" on the operation at `path` and resolves to it once its answer shows. */
async function tryOperation(page: Page, path: RegExp): Promise<Locator> {
  const operation = page.locator('.opblock', { has: page.locator('.opblock-summary-path', { hasText: path }) });
  await operation.locator('.opblock-summary').click();
  await operation.getByRole('button', { name: 'Try it out' }).click();
  await operation.getByRole('button', { name: 'Execute' }).click();
  await operation.locator('.live-responses-table tr.response .response-col_status').waitFor();
  return operation;
}

/** The status Swagger UI shows for an operation's last call. */
async function shownStatus(operation: Locator): Promise<string | undefined> {
  return (await operation.locator('.live-responses-table tr.response .response-col_status').textContent())?.trim();
}

describe.each<Adapter>(['express', 'fastify'])('Swagger UI with nestjs-api-auth/swagger on %s', (adapter) => {
  const env = useBrowserAndSample(adapter);

  it('offers our schemes in "Authorize", and a call made from it carries the key and gets 200', async () => {
    const page = await env.browser.context.newPage();
    page.setDefaultTimeout(15_000);
    const sentKeys: Array<string | undefined> = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/reports') sentKeys.push(request.headers()['x-api-key']);
    });
    await page.goto(`${env.sample.base}/docs`);
    await page.locator('.opblock-summary', { hasText: '/reports' }).first().waitFor();

    await page.getByRole('button', { name: 'Authorize' }).first().click();
    const dialog = page.locator('.modal-ux');
    await dialog.waitFor();
    const schemes = (await dialog.locator('.auth-container h4').allTextContents()).map((text) => text.trim());
    expect(schemes).toEqual([expect.stringMatching(/^X-API-Key\b/), expect.stringMatching(/^bearer\b/)]);

    await authorize(dialog.locator('.auth-container', { hasText: 'X-API-Key' }), env.sample.demoKey);
    expect(await shownStatus(await tryOperation(page, /^\/reports$/))).toBe('200');
    expect(sentKeys).toEqual([env.sample.demoKey]);
    await page.close();
  });

  it('calls a guarded route with the key as a bearer token from the "bearer" scheme', async () => {
    const page = await env.browser.context.newPage();
    page.setDefaultTimeout(15_000);
    const sent: Array<string | undefined> = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/hello') sent.push(request.headers()['authorization']);
    });
    await page.goto(`${env.sample.base}/docs`);
    await page.getByRole('button', { name: 'Authorize' }).first().click();
    await authorize(page.locator('.modal-ux .auth-container', { hasText: 'bearer' }), env.sample.demoKey);
    const operation = await tryOperation(page, /^\/hello$/);
    expect(await shownStatus(operation)).toBe('200');
    expect(await operation.locator('.live-responses-table tr.response .response-col_description').textContent()).toContain('Hello, demo-user!');
    expect(sent).toEqual([`Bearer ${env.sample.demoKey}`]);
    await page.close();
  });

  it('leaves the console out of the API document', async () => {
    const response = await fetch(`${env.sample.base}/docs-json`);
    const paths = Object.keys(((await response.json()) as { paths: Record<string, unknown> }).paths);
    expect(paths).toContain('/api-keys/{id}');
    expect(paths.filter((path) => path.includes('console'))).toEqual([]);
  });
});
