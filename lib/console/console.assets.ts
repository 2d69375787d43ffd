import { readFileSync } from 'node:fs';

/** One file the console controller serves. */
export interface ConsoleAsset {
  contentType: string;
  body: string;
}

/** The page, its script and its style, as sent. */
export interface ConsoleAssets {
  html: ConsoleAsset;
  script: ConsoleAsset;
  style: ConsoleAsset;
  icon: ConsoleAsset;
}

// A key, drawn small: without an icon every browser asks for /favicon.ico, which the
// app answers with a 404 in the operator's console.
const ICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="5" cy="8" r="3.5" fill="none" ' +
  'stroke="#1f6feb" stroke-width="2"/><path d="M8.5 8H15M12 8v3M14.5 8v2" stroke="#1f6feb" stroke-width="2"/></svg>';

// The assets ship beside this module: lib/console/assets in the sources, and
// dist/console/assets in the package (the build copies them).
const read = (name: string) => readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

/**
 * Reads the assets once, at start-up, and fills in the settings the page needs: the
 * header that carries the key (validated as a header name by the module options, and
 * escaped all the same), and the scopes that may write, so the page can hide its
 * write controls from a read-only key.
 */
export function loadConsoleAssets(keyHeader: string, writeScopes: readonly string[] = []): ConsoleAssets {
  return {
    html: {
      contentType: 'text/html; charset=utf-8',
      body: read('console.html')
        .replace('{{keyHeader}}', escapeHtml(keyHeader))
        // Space-separated: scopes hold no spaces (the routes options check it).
        .replace('{{writeScopes}}', escapeHtml(writeScopes.join(' '))),
    },
    script: { contentType: 'text/javascript; charset=utf-8', body: read('console.js') },
    style: { contentType: 'text/css; charset=utf-8', body: read('console.css') },
    icon: { contentType: 'image/svg+xml', body: ICON },
  };
}
