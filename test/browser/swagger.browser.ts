import { describe, expect, it } from 'vitest';
import { useBrowserAndSample } from './browser-and-sample.js';
import type { Adapter } from './sample-app.js';

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

    const header = dialog.locator('.auth-container', { hasText: 'X-API-Key' });
    await header.locator('input').fill(env.sample.demoKey);
    // Swagger UI labels its per-scheme "Authorize" button "Apply credentials".
    await header.getByRole('button', { name: 'Apply credentials' }).click();
    await header.locator('button', { hasText: 'Logout' }).waitFor();
    await header.locator('button', { hasText: 'Close' }).click();

    const operation = page.locator('.opblock', { has: page.locator('.opblock-summary-path', { hasText: /^\/reports$/ }) });
    await operation.locator('.opblock-summary').click();
    await operation.getByRole('button', { name: 'Try it out' }).click();
    await operation.getByRole('button', { name: 'Execute' }).click();
    const status = operation.locator('.live-responses-table tr.response .response-col_status');
    await status.waitFor();
    expect((await status.textContent())?.trim()).toBe('200');
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
    const bearer = page.locator('.modal-ux .auth-container', { hasText: 'bearer' });
    await bearer.locator('input').fill(env.sample.demoKey);
    await bearer.getByRole('button', { name: 'Apply credentials' }).click();
    await bearer.locator('button', { hasText: 'Logout' }).waitFor();
    await bearer.locator('button', { hasText: 'Close' }).click();

    const operation = page.locator('.opblock', { has: page.locator('.opblock-summary-path', { hasText: /^\/hello$/ }) });
    await operation.locator('.opblock-summary').click();
    await operation.getByRole('button', { name: 'Try it out' }).click();
    await operation.getByRole('button', { name: 'Execute' }).click();
    const status = operation.locator('.live-responses-table tr.response .response-col_status');
    await status.waitFor();
    expect((await status.textContent())?.trim()).toBe('200');
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
