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
