import type { BrowserContext, Page } from 'playwright-core';

/** A console page plus what it logged and every URL it requested. */
export interface ConsolePage {
  page: Page;
  /** Browser console lines (CSP violations show up here) and uncaught page errors. */
  messages: string[];
  requests: string[];
}

export async function openConsole(context: BrowserContext, base: string): Promise<ConsolePage> {
  const page = await context.newPage();
  const messages: string[] = [];
  const requests: string[] = [];
  page.on('console', (message) => messages.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => messages.push(`pageerror: ${error.message}`));
  page.on('request', (request) => requests.push(request.url()));
  // Revoke and delete ask first; the tests answer yes.
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(`${base}/api-keys/console`);
  return { page, messages, requests };
}

/** Pastes a key and waits for the first listing (or the refusal). */
export async function useKey(page: Page, key: string): Promise<void> {
  await page.getByLabel('Admin key').fill(key);
  await page.getByRole('button', { name: 'Use key' }).click();
  await page.locator('#list-summary:not(:empty), #error:not([hidden])').first().waitFor();
}

/** The error box's text once it shows. */
export async function errorText(page: Page): Promise<string> {
  const box = page.locator('#error');
  await box.waitFor({ state: 'visible' });
  return (await box.textContent()) ?? '';
}

/** The details panel as a map of its terms to their values. */
export async function detailsOf(page: Page): Promise<Record<string, string>> {
  await page.locator('#details-section').waitFor({ state: 'visible' });
  return page.locator('#details').evaluate((list: any) => {
    const out: Record<string, string> = {};
    for (const dt of Array.from<any>(list.querySelectorAll('dt'))) out[dt.textContent ?? ''] = dt.nextElementSibling?.textContent ?? '';
    return out;
  });
}

/** The rows of the key list, as their text. */
export async function listedRows(page: Page): Promise<string[]> {
  return page.locator('#key-list .key-row').allTextContents();
}

/** Waits until the status line says `text` (a substring). */
export async function statusSays(page: Page, text: string): Promise<void> {
  await page.locator('#status', { hasText: text }).waitFor();
}

/** What a browser keeps for a site: the key must leave none of it. */
export async function storedState(page: Page): Promise<{ cookies: number; local: number; session: number }> {
  const cookies = (await page.context().cookies()).length;
  const { local, session } = await page.evaluate(() => {
    const { localStorage, sessionStorage } = globalThis as any;
    return { local: localStorage.length as number, session: sessionStorage.length as number };
  });
  return { cookies, local, session };
}
