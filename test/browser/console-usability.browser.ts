import type { Page, Route } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { useBrowserAndSample } from './browser-and-sample.js';
import { detailsOf, errorText, openConsole, statusSays, useKey } from './console-page.js';
import type { Adapter } from './sample-app.js';

interface Sent {
  method: string;
  url: string;
  ifMatch: string | undefined;
}

/**
 * Makes the management routes answer as a server with (`version: 7`) or without
 * versioned keys, whatever this build's server does, and records what the page sent.
 * PATCH answers 412, as a server does when someone else wrote first.
 */
async function routeVersioned(page: Page, base: string, versioned: boolean): Promise<Sent[]> {
  const sent: Sent[] = [];
  await page.route(`${base}/api-keys**`, async (route: Route) => {
    const request = route.request();
    if (new URL(request.url()).pathname.startsWith('/api-keys/console')) return route.continue();
    sent.push({ method: request.method(), url: request.url(), ifMatch: request.headers()['if-match'] });
    if (request.method() === 'PATCH') {
      const body = { statusCode: 412, error: 'Precondition Failed', code: 'version_conflict', message: 'The key changed since you read it.' };
      return route.fulfill({ status: 412, contentType: 'application/json', body: JSON.stringify(body) });
    }
    // The real server does the work; what it is told about versions is stripped.
    const url = new URL(request.url());
    url.searchParams.delete('cascade');
    const headers = { ...request.headers() };
    delete headers['if-match'];
    const response = await route.fetch({ url: url.href, headers });
    const shape = (key: Record<string, unknown>) => {
      const { version: _version, ...rest } = key;
      return versioned ? { ...rest, version: 7 } : rest;
    };
    const json = await response.json();
    const body = Array.isArray(json.items) ? { ...json, items: json.items.map(shape) } : typeof json.id === 'string' ? shape(json) : json;
    return route.fulfill({ response, json: body });
  });
  return sent;
}

describe.each<Adapter>(['express', 'fastify'])('console usability on %s', (adapter) => {
  const env = useBrowserAndSample(adapter);

  it.each([
    ['with', true],
    ['without', false],
  ])('a server %s key versions: If-Match and the cascade choice exactly when keys carry a version', async (_, versioned) => {
    const { base, apiKeys, adminKey } = env.sample;
    const owner = `versions-${versioned}`;
    await apiKeys.issue({ ownerId: owner, name: 'target', scopes: ['reports:read'] });
    const { page } = await openConsole(env.browser.context, base);
    const sent = await routeVersioned(page, base, versioned);
    await useKey(page, adminKey);
    await page.getByLabel('Owner', { exact: true }).fill(owner);
    await page.getByRole('button', { name: 'List keys' }).click();
    await page.locator('#key-list .key-row', { hasText: 'target' }).click();
    const details = await detailsOf(page);
    expect(details.Version).toBe(versioned ? '7' : undefined);
    const cascade = page.getByLabel('Also revoke the keys this key issued');
    expect(await cascade.isVisible()).toBe(versioned);

    await page.locator('#edit-name').fill('target renamed');
    await page.getByRole('button', { name: 'Save changes' }).click();
    expect(await errorText(page)).toBe('412 version_conflict: The key changed since you read it.');

    if (versioned) await cascade.uncheck();
    await page.getByRole('button', { name: 'Revoke', exact: true }).click();
    await statusSays(page, 'Key revoked.');

    const writes = sent.filter((request) => request.method !== 'GET');
    const revokeUrl = (id: string) => `${base}/api-keys/${id}/revoke${versioned ? '?cascade=false' : ''}`;
    expect(writes).toEqual([
      { method: 'PATCH', url: `${base}/api-keys/${details.Id}`, ifMatch: versioned ? '"7"' : undefined },
      { method: 'POST', url: revokeUrl(details.Id!), ifMatch: versioned ? '"7"' : undefined },
    ]);
    expect((await apiKeys.get(details.Id!))!.revokedAt).not.toBeNull();
    await page.close();
  });

  it('issues once when "Issue key" is pressed again while the first request is under way', async () => {
    const { base, apiKeys, adminKey } = env.sample;
    const { page } = await openConsole(env.browser.context, base);
    await useKey(page, adminKey);
    let posts = 0;
    let reached!: () => void;
    let release!: () => void;
    const firstReached = new Promise<void>((resolve) => (reached = resolve));
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route(`${base}/api-keys`, async (route) => {
      if (route.request().method() === 'POST') {
        posts++;
        reached();
        await held;
      }
      await route.continue();
    });
    await page.locator('#issue-owner').fill('double-click');
    await page.locator('#issue-name').fill('once');
    await page.locator('#issue-scopes').fill('reports:read');
    await page.getByRole('button', { name: 'Issue key' }).click();
    await firstReached;
    await page.getByRole('button', { name: 'Issue key' }).click();
    release();
    await statusSays(page, 'Issued "once" for double-click.');
    expect(posts).toBe(1);
    expect((await apiKeys.listPage('double-click', { limit: 10 })).total).toBe(1);
    await page.close();
  });

  it('names every control, works from the keyboard, and fits 320 px', async () => {
    const { base, apiKeys, adminKey } = env.sample;
    // A long unbroken name is what pushes a narrow layout sideways.
    await apiKeys.issue({ ownerId: 'ops', name: `wide-${'x'.repeat(190)}`, scopes: ['reports:read'] });
    const { page, messages } = await openConsole(env.browser.context, base);
    await page.setViewportSize({ width: 320, height: 800 });

    const unnamed = await page.evaluate(() => {
      const doc = (globalThis as any).document;
      const missing: string[] = [];
      for (const control of Array.from<any>(doc.querySelectorAll('input, button, textarea, select'))) {
        const labelled = control.labels ? Array.from<any>(control.labels).map((label) => label.textContent.trim()).join(' ') : '';
        const own = control.tagName === 'BUTTON' ? control.textContent.trim() : '';
        if (!(control.getAttribute('aria-label') || labelled || own)) missing.push(control.id || control.outerHTML.slice(0, 80));
      }
      return missing;
    });
    expect(unnamed).toEqual([]);
    for (const label of ['Admin key', 'Owner', 'Search by name or id', 'Owner of the new key', 'Grace period in minutes', 'Also revoke the keys this key issued']) {
      expect(await page.getByLabel(label, { exact: true }).count(), label).toBe(1);
    }
    for (const name of ['Use key', 'List keys', 'Issue key', 'Rotate', 'Revoke', 'Delete', 'Copy key', 'Save changes', 'Next page']) {
      expect(await page.getByRole('button', { name, exact: true, includeHidden: true }).count(), name).toBe(1);
    }

    // Keyboard only: the key field comes first, Enter submits, Tab reaches the rows.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (globalThis as any).document.activeElement.id)).toBe('admin-key');
    await page.keyboard.type(adminKey);
    await page.keyboard.press('Enter');
    await page.locator('#list-summary', { hasText: "2 keys of your key's owner." }).waitFor();
    let presses = 0;
    while (!(await page.evaluate(() => (globalThis as any).document.activeElement.classList.contains('key-row')))) {
      await page.keyboard.press('Tab');
      expect(++presses).toBeLessThan(30);
    }
    await page.keyboard.press('Enter');
    await page.locator('#details-section').waitFor({ state: 'visible' });
    expect(await page.evaluate(() => (globalThis as any).document.activeElement.id)).toBe('details-title');

    // Open the wide one too: list and details shown, nothing wider than the screen.
    await page.locator('#key-list .key-row', { hasText: 'wide-' }).click();
    expect((await detailsOf(page)).Name).toMatch(/^wide-x+$/);
    expect(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth)).toBeLessThanOrEqual(320);
    expect(messages).toEqual([]);
    await page.close();
  });
});
