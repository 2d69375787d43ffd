import { describe, expect, it } from 'vitest';
import { useBrowserAndSample } from './browser-and-sample.js';
import { detailsOf, errorText, listedRows, openConsole, statusSays, storedState, useKey } from './console-page.js';
import type { Adapter } from './sample-app.js';

/** The status of a call to the sample's guarded route with `key`. */
async function reports(base: string, key: string): Promise<{ status: number }> {
  const response = await fetch(`${base}/reports`, { headers: { 'X-API-Key': key } });
  await response.arrayBuffer();
  return { status: response.status };
}

describe.each<Adapter>(['express', 'fastify'])('operator console on %s', (adapter) => {
  const env = useBrowserAndSample(adapter);

  it('issues, lists, pages, searches, edits, rotates, revokes and deletes, keeping the key in memory only', async () => {
    const { base, apiKeys, adminKey } = env.sample;
    await env.browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    const { page, messages, requests } = await openConsole(env.browser.context, base);

    await useKey(page, adminKey);
    expect(await page.getByLabel('Admin key').inputValue()).toBe('');
    expect(await page.locator('#list-summary').textContent()).toBe("1 key of your key's owner. Page 1: 1 shown.");

    // Issue: the plaintext once, with a copy button and the warning.
    await page.locator('#issue-owner').fill('acme');
    await page.locator('#issue-name').fill('acme ci');
    await page.locator('#issue-scopes').fill('reports:read');
    await page.getByRole('button', { name: 'Issue key' }).click();
    const panel = page.locator('#secret-panel');
    await panel.waitFor({ state: 'visible' });
    expect(await panel.textContent()).toContain('You will not see it again');
    const issued = (await page.locator('#secret-value').textContent())!;
    expect(issued).toMatch(/^demo_[A-Za-z0-9]{40,}$/);
    await page.getByRole('button', { name: 'Copy key' }).click();
    await statusSays(page, 'copied');
    expect(await page.evaluate(() => (globalThis as any).navigator.clipboard.readText() as Promise<string>)).toBe(issued);
    expect((await reports(base, issued)).status).toBe(200);

    const fresh = await detailsOf(page);
    expect(fresh).toMatchObject({ Name: 'acme ci', Owner: 'acme', Status: 'active', Scopes: 'reports:read', Policy: 'none', Expires: 'never', 'Last used': 'never', Revoked: 'no' });
    expect(issued.endsWith(fresh.Hint!.split('…')[1]!)).toBe(true);
    const issuedId = fresh.Id!;

    await page.getByRole('button', { name: 'I have stored it' }).click();
    await panel.waitFor({ state: 'hidden' });
    expect(await page.content()).not.toContain(issued);

    // Paging through an owner's keys with the server's cursors.
    const batch: string[] = [];
    for (let i = 1; i <= 24; i++) {
      const { apiKey } = await apiKeys.issue({ ownerId: 'acme', name: `batch ${String(i).padStart(2, '0')}`, scopes: ['reports:read'] });
      batch.push(apiKey.id);
    }
    await page.getByLabel('Owner', { exact: true }).fill('acme');
    await page.getByRole('button', { name: 'List keys' }).click();
    await page.locator('#list-summary', { hasText: '25 keys of acme. Page 1: 20 shown.' }).waitFor();
    expect(await listedRows(page)).toHaveLength(20);
    expect(await page.getByRole('button', { name: 'Previous page' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.locator('#list-summary', { hasText: 'Page 2: 5 shown.' }).waitFor();
    const secondPage = await listedRows(page);
    expect(secondPage).toHaveLength(5);
    expect(await page.getByRole('button', { name: 'Next page' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Previous page' }).click();
    await page.locator('#list-summary', { hasText: 'Page 1: 20 shown.' }).waitFor();
    const firstPage = await listedRows(page);
    expect(new Set([...firstPage, ...secondPage]).size).toBe(25);

    // Search by part of a name (any case), and by id.
    const searchFor = async (term: string, summary: string) => {
      await page.getByLabel('Search by name or id').fill(term);
      await page.getByRole('button', { name: 'List keys' }).click();
      await page.locator('#list-summary', { hasText: summary }).waitFor();
      return listedRows(page);
    };
    expect(await searchFor('BATCH 1', '10 matches for "BATCH 1" among 25 keys.')).toHaveLength(10);
    const byId = await searchFor(batch[6]!, '1 match for');
    expect(byId).toHaveLength(1);
    expect(byId[0]).toContain('batch 07');
    const named = await searchFor('acme ci', '1 match for "acme ci"');
    expect(named[0]).toContain(issuedId);

    // Edit name, scopes, expiry and policy.
    await page.locator('#key-list .key-row', { hasText: 'acme ci' }).click();
    await page.locator('#edit-name').fill('acme ci (renamed)');
    await page.locator('#edit-scopes').fill('reports:read, reports:write');
    await page.locator('#edit-expires').fill('2031-02-03T04:05');
    await page.locator('#edit-policy').fill('{"quota":{"limit":1000}}');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await statusSays(page, 'Saved name, scopes, expiresAt, policy.');
    const expectedExpiry = await page.evaluate(() => new Date('2031-02-03T04:05').toISOString());
    const edited = await detailsOf(page);
    expect(edited).toMatchObject({ Name: 'acme ci (renamed)', Scopes: 'reports:read reports:write', Expires: expectedExpiry });
    expect(JSON.parse(edited.Policy!)).toEqual({ quota: { limit: 1000 } });
    const stored = (await apiKeys.get(issuedId))!;
    expect(stored.name).toBe('acme ci (renamed)');
    expect(stored.scopes).toEqual(['reports:read', 'reports:write']);
    expect(stored.expiresAt?.toISOString()).toBe(expectedExpiry);
    expect(stored.policy?.quota?.limit).toBe(1000);
    expect(await listedRows(page)).toEqual([expect.stringContaining('acme ci (renamed)')]);

    // Rotate with a grace period: both keys work during it.
    await page.getByLabel('Grace period in minutes').fill('5');
    await page.getByLabel('Name of the new key').fill('acme ci v2');
    await page.getByRole('button', { name: 'Rotate' }).click();
    await statusSays(page, 'Rotated. The old key works until');
    const replacement = (await page.locator('#secret-value').textContent())!;
    expect(replacement).toMatch(/^demo_/);
    expect(replacement).not.toBe(issued);
    const rotated = await detailsOf(page);
    expect(rotated).toMatchObject({ Name: 'acme ci v2', 'Rotated from': issuedId });
    const previous = (await apiKeys.get(issuedId))!;
    expect(previous.expiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + 5 * 60_000);
    expect((await reports(base, issued)).status).toBe(200);
    expect((await reports(base, replacement)).status).toBe(200);
    await page.getByRole('button', { name: 'I have stored it' }).click();

    // Revoke the replacement (the page asks first; the test answers yes).
    await page.getByRole('button', { name: 'Revoke', exact: true }).click();
    await statusSays(page, 'Key revoked.');
    const revoked = await detailsOf(page);
    expect(revoked.Status).toBe('revoked');
    expect(revoked.Revoked).not.toBe('no');
    expect((await reports(base, replacement)).status).toBe(401);

    // Delete it.
    await page.getByRole('button', { name: 'Delete' }).click();
    await statusSays(page, 'Key deleted.');
    expect(await page.locator('#details-section').isHidden()).toBe(true);
    expect(await apiKeys.get(rotated.Id!)).toBeNull();

    // The key was in a variable only: nothing stored, nothing in a URL, nothing logged.
    expect(await storedState(page)).toEqual({ cookies: 0, local: 0, session: 0 });
    for (const secret of [adminKey, issued, replacement]) {
      expect(requests.filter((url) => url.includes(secret))).toEqual([]);
      expect(env.sample.logger.lines.filter((line) => line.includes(secret))).toEqual([]);
    }
    expect(messages).toEqual([]);
    await page.close();
  });

  it('shows the server refusals by their code', async () => {
    const { base, apiKeys } = env.sample;
    const { page, messages } = await openConsole(env.browser.context, base);

    await useKey(page, 'demo_not-a-key');
    expect(await errorText(page)).toMatch(/^401 [a-z_]+: /);

    const { key: selfKey } = await apiKeys.issue({ ownerId: 'tenant', name: 'tenant self', scopes: ['api-keys:self', 'reports:read'] });
    const { apiKey: other } = await apiKeys.issue({ ownerId: 'tenant', name: 'tenant reader', scopes: ['reports:read'] });
    await useKey(page, selfKey);
    expect(await page.locator('#error').isHidden()).toBe(true);
    expect(await page.locator('#list-summary').textContent()).toBe("2 keys of your key's owner. Page 1: 2 shown.");

    await page.locator('#issue-name').fill('too strong');
    await page.locator('#issue-scopes').fill('api-keys:admin');
    await page.getByRole('button', { name: 'Issue key' }).click();
    expect(await errorText(page)).toBe(
      '403 scope_escalation: A self-service key can only grant, or manage keys with, scopes it holds itself.',
    );

    await page.locator('#key-list .key-row', { hasText: 'tenant reader' }).click();
    await page.locator('#edit-policy').fill('{"quota":{"limit":5}}');
    await page.getByRole('button', { name: 'Save changes' }).click();
    expect(await errorText(page)).toBe('403 forbidden_policy: Only an admin key can set or change a key policy.');

    await page.locator('#edit-policy').fill('');
    await page.locator('#edit-expires').fill('2001-01-01T00:00');
    await page.getByRole('button', { name: 'Save changes' }).click();
    expect(await errorText(page)).toBe('400 validation_failed: Invalid "expiresAt": must be in the future (field: expiresAt)');
    expect((await apiKeys.get(other.id))!.expiresAt).toBeNull();

    await page.locator('#edit-expires').fill('');
    await page.locator('#edit-policy').fill('{not json');
    await page.getByRole('button', { name: 'Save changes' }).click();
    expect(await errorText(page)).toBe('invalid_input: is not valid JSON (field: policy)');

    await page.getByLabel('Owner', { exact: true }).fill('someone-else');
    await page.getByRole('button', { name: 'List keys' }).click();
    expect(await errorText(page)).toMatch(/^403 forbidden_owner: /);

    expect(messages.filter((line) => !line.startsWith('error: Failed to load resource'))).toEqual([]);
    await page.close();
  });
});
