import { describe, expect, it } from 'vitest';
import { useBrowserAndSample } from './browser-and-sample.js';
import { detailsOf, listedRows, openConsole, statusSays, useKey } from './console-page.js';
import type { Adapter } from './sample-app.js';

/** The status of a call to the sample's guarded route with `key`. */
async function reports(base: string, key: string): Promise<{ status: number; code?: string }> {
  const response = await fetch(`${base}/reports`, { headers: { 'X-API-Key': key } });
  const body = (await response.json().catch(() => ({}))) as { code?: string };
  return { status: response.status, code: body.code };
}

describe.each<Adapter>(['express', 'fastify'])('operator console: disable, all owners, read-only keys, on %s', (adapter) => {
  const env = useBrowserAndSample(adapter);

  it('disables and enables a key, showing its status, and hides both once it is revoked', async () => {
    const { base, apiKeys, adminKey } = env.sample;
    const { page, messages } = await openConsole(env.browser.context, base);
    const { key, apiKey } = await apiKeys.issue({ ownerId: 'status-co', name: 'switchable', scopes: ['reports:read'] });
    await useKey(page, adminKey);
    await page.getByLabel('Owner', { exact: true }).fill('status-co');
    await page.getByRole('button', { name: 'List keys' }).click();
    await page.locator('#list-summary', { hasText: '1 key of status-co' }).waitFor();
    await page.locator('#key-list .key-row', { hasText: 'switchable' }).click();
    expect(await detailsOf(page)).toMatchObject({ Status: 'active', Disabled: 'no' });
    expect(await page.getByRole('button', { name: 'Enable', exact: true }).isVisible()).toBe(false);

    await page.getByRole('button', { name: 'Disable', exact: true }).click();
    await statusSays(page, 'Key disabled.');
    const disabled = await detailsOf(page);
    expect(disabled.Status).toBe('disabled');
    expect(disabled.Disabled).toBe((await apiKeys.get(apiKey.id))!.disabledAt!.toISOString());
    expect(await listedRows(page)).toEqual([expect.stringContaining('disabled')]);
    expect(await reports(base, key)).toEqual({ status: 401, code: 'disabled_api_key' });
    expect(await page.getByRole('button', { name: 'Disable', exact: true }).isVisible()).toBe(false);

    await page.getByRole('button', { name: 'Enable', exact: true }).click();
    await statusSays(page, 'Key enabled.');
    expect(await detailsOf(page)).toMatchObject({ Status: 'active', Disabled: 'no' });
    expect((await reports(base, key)).status).toBe(200);

    await page.getByRole('button', { name: 'Revoke', exact: true }).click();
    await statusSays(page, 'Key revoked.');
    expect(await page.getByRole('button', { name: 'Disable', exact: true }).isVisible()).toBe(false);
    expect(await page.getByRole('button', { name: 'Enable', exact: true }).isVisible()).toBe(false);
    expect(messages).toEqual([]);
  });

  it('lists every owner newest first with filters, and gives a read-only key no write control', async () => {
    const { base, apiKeys } = env.sample;
    const stamp = `${adapter}-${Date.now()}`;
    const first = await apiKeys.issue({ ownerId: `a-${stamp}`, name: `first ${stamp}` });
    const second = await apiKeys.issue({ ownerId: `b-${stamp}`, name: `second ${stamp}` });
    // Newest first: createdAt, then id, descending (the two may share a millisecond).
    const [newer, older] = [first.apiKey, second.apiKey].sort(
      (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1),
    );
    await apiKeys.disable(second.apiKey.id);
    const reader = await apiKeys.issue({ ownerId: 'auditors', name: 'auditor', scopes: ['api-keys:read'] });

    const { page, messages, requests } = await openConsole(env.browser.context, base);
    await useKey(page, reader.key);
    await page.locator('#session', { hasText: 'read-only' }).waitFor();
    expect(await page.locator('#issue-section').isVisible()).toBe(false);

    await page.getByLabel('All owners').check();
    await page.getByRole('button', { name: 'List keys' }).click();
    await page.locator('#list-summary', { hasText: 'All owners, newest first.' }).waitFor();
    const rows = await listedRows(page);
    const mine = rows.filter((row) => row.includes(stamp));
    expect(mine).toEqual([expect.stringContaining(newer!.id), expect.stringContaining(older!.id)]);
    // Across owners each row names its owner.
    expect(mine.find((row) => row.includes(second.apiKey.id))).toContain(`b-${stamp}`);

    await page.getByLabel('Status').selectOption('disabled');
    await page.getByRole('button', { name: 'List keys' }).click();
    await page.locator('#list-summary', { hasText: '(disabled)' }).waitFor();
    expect((await listedRows(page)).filter((row) => row.includes(stamp))).toEqual([expect.stringContaining(`second ${stamp}`)]);
    expect((await listedRows(page)).every((row) => row.includes('disabled'))).toBe(true);

    // The details show, the write controls do not.
    await page.locator('#key-list .key-row', { hasText: `second ${stamp}` }).click();
    expect(await detailsOf(page)).toMatchObject({ Status: 'disabled', Owner: `b-${stamp}` });
    expect(await page.locator('#read-only-note').isVisible()).toBe(true);
    for (const name of ['Enable', 'Disable', 'Save changes', 'Rotate', 'Delete']) {
      expect(await page.getByRole('button', { name, exact: true }).isVisible()).toBe(false);
    }
    expect(await apiKeys.get(first.apiKey.id)).toMatchObject({ version: 1 });
    // The page learned that from the key's own record: no write was tried, nothing was refused.
    expect(requests.filter((url) => /\/(disable|enable|revoke|rotate)$/.test(url))).toEqual([]);
    expect(requests.some((url) => url.includes(reader.key))).toBe(false);
    expect(messages).toEqual([]);
  });
});
