import { describe, expect, it } from 'vitest';
import { useBrowserAndSample } from './browser-and-sample.js';
import { detailsOf, listedRows, openConsole, statusSays, useKey } from './console-page.js';
import type { Adapter } from './sample-app.js';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Names that would run script if any of them reached the page as HTML. */
const HOSTILE_NAMES = [
  '<img src=x onerror="window.__pwned=1">',
  '</script><script>window.__pwned=2</script>',
  '"><svg onload="window.__pwned=3">',
  "'><iframe srcdoc=\"<script>parent.__pwned=4</script>\">",
  '<b id="bold">{{keyHeader}}</b> &amp; &lt;',
];
const HOSTILE_SCOPE = '<img/src=x/onerror=window.__pwned=5>';

/** Elements a hostile name would create; the page itself has none of them. */
const countInjected = (page: import('playwright-core').Page) =>
  page.evaluate(() => {
    const doc = (globalThis as any).document;
    return {
      elements: doc.querySelectorAll('img, svg, iframe, object, embed, b, script:not([src])').length as number,
      pwned: (globalThis as any).__pwned as unknown,
    };
  });

describe.each<Adapter>(['express', 'fastify'])('console safety on %s', (adapter) => {
  const env = useBrowserAndSample(adapter);

  it('sends the page and its assets with a strict CSP, no framing, no caching, without a key', async () => {
    for (const [path, type] of [
      ['/api-keys/console', 'text/html'],
      ['/api-keys/console/console.js', 'text/javascript'],
      ['/api-keys/console/console.css', 'text/css'],
      ['/api-keys/console/icon.svg', 'image/svg+xml'],
    ] as const) {
      const response = await fetch(env.sample.base + path);
      expect(response.status, path).toBe(200);
      expect((await response.text()).length, path).toBeGreaterThan(0);
      expect(response.headers.get('content-type'), path).toContain(type);
      expect(response.headers.get('content-security-policy'), path).toBe(CSP);
      expect(response.headers.get('x-frame-options'), path).toBe('DENY');
      expect(response.headers.get('cache-control'), path).toBe('no-store');
      expect(response.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
  });

  it('cannot be framed by another page', async () => {
    const page = await env.browser.context.newPage();
    const refused = page.waitForEvent('console', (message) => /frame-ancestors|X-Frame-Options/.test(message.text()));
    await page.setContent(`<iframe title="console" src="${env.sample.base}/api-keys/console"></iframe>`);
    expect((await refused).text()).toContain("frame-ancestors 'none'");
    const frame = page.frames().find((candidate) => candidate !== page.mainFrame())!;
    expect(await frame.locator('#admin-key').count()).toBe(0);
    await page.close();
  });

  it('refuses inline script: the CSP is in force in the browser', async () => {
    const { page, messages } = await openConsole(env.browser.context, env.sample.base);
    const refused = page.waitForEvent('console', (message) => message.text().includes('Content Security Policy'));
    await page.evaluate(() => {
      const doc = (globalThis as any).document;
      const script = doc.createElement('script');
      script.textContent = 'window.__inline = true';
      doc.body.append(script);
    });
    expect((await refused).text()).toContain("script-src 'self'");
    expect(await page.evaluate(() => (globalThis as any).__inline)).toBeUndefined();
    expect(messages.filter((line) => line.startsWith('pageerror'))).toEqual([]);
    await page.close();
  });

  it('shows hostile names, owners, scopes and metadata as text', async () => {
    const { apiKeys, adminKey, base } = env.sample;
    const owner = '<b>hostile</b>';
    for (const name of HOSTILE_NAMES) {
      await apiKeys.issue({ ownerId: owner, name, scopes: [HOSTILE_SCOPE], metadata: { note: name } });
    }
    const { page, messages } = await openConsole(env.browser.context, base);
    await useKey(page, adminKey);
    await page.getByLabel('Owner', { exact: true }).fill(owner);
    await page.getByRole('button', { name: 'List keys' }).click();
    await page.locator('#list-summary', { hasText: `5 keys of ${owner}.` }).waitFor();
    const rows = await page.locator('#key-list .key-row .name').allTextContents();
    expect([...rows].sort()).toEqual([...HOSTILE_NAMES].sort());
    expect(await page.locator('#list-summary').textContent()).toBe(`5 keys of ${owner}. Page 1: 5 shown.`);

    for (const name of HOSTILE_NAMES) {
      await page.locator('#key-list .key-row .name').getByText(name, { exact: true }).click();
      const details = await detailsOf(page);
      expect(details).toMatchObject({ Name: name, Owner: owner, Scopes: HOSTILE_SCOPE });
      expect(JSON.parse(details.Metadata!)).toEqual({ note: name });
      expect(await page.locator('#details-title span').textContent()).toBe(name);
      expect(await page.locator('#edit-name').inputValue()).toBe(name);
    }

    // Typed into the page, sent, and shown back.
    const typed = '</script><img src=x onerror="window.__pwned=6">';
    await page.locator('#issue-owner').fill(owner);
    await page.locator('#issue-name').fill(typed);
    await page.locator('#issue-scopes').fill(HOSTILE_SCOPE);
    await page.getByRole('button', { name: 'Issue key' }).click();
    await statusSays(page, `Issued "${typed}" for ${owner}.`);
    expect((await detailsOf(page)).Name).toBe(typed);
    await page.getByRole('button', { name: 'List keys' }).click();
    await page.locator('#list-summary', { hasText: `6 keys of ${owner}.` }).waitFor();
    expect(await listedRows(page)).toHaveLength(6);

    expect(await countInjected(page)).toEqual({ elements: 0, pwned: undefined });
    expect(messages).toEqual([]);
    await page.close();
  });
});
