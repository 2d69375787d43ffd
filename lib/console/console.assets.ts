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
}

// The assets ship beside this module: lib/console/assets in the sources, and
// dist/console/assets in the package (the build copies them).
const read = (name: string) => readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

/**
 * Reads the assets once, at start-up, and fills in the one setting the page needs: the
 * header that carries the key (validated as a header name by the module options, and
 * escaped all the same).
 */
export function loadConsoleAssets(keyHeader: string): ConsoleAssets {
  return {
    html: {
      contentType: 'text/html; charset=utf-8',
      body: read('console.html').replace('{{keyHeader}}', escapeHtml(keyHeader)),
    },
    script: { contentType: 'text/javascript; charset=utf-8', body: read('console.js') },
    style: { contentType: 'text/css; charset=utf-8', body: read('console.css') },
  };
}
