// `node dist-scripts/check-docs.js`: checks every TypeScript snippet of README.md and
// docs/ against the built package (run `npm run build` first). Prints each problem as
// `page:line: message`, then `docs: N passed, N failed (N compiled, N run)`, counting each compilation and each run as a check; exits 1 on any failure.
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkDocs } from './docs/check.js';

/** README.md and every Markdown page under docs/, in a stable order. */
export async function documentationPages(root: string): Promise<string[]> {
  const docs = (await readdir(join(root, 'docs'), { recursive: true, encoding: 'utf8' }))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => join(root, 'docs', f));
  return [join(root, 'README.md'), ...docs];
}

async function main(): Promise<number> {
  const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
  const result = await checkDocs(root, await documentationPages(root));
  for (const p of result.problems) console.error(`${p.page}:${p.line}: ${p.message}`);
  console.log(`${result.partial} snippet(s) marked partial, not compiled`);
  const checks = result.compiled + result.run;
  console.log(`docs: ${Math.max(0, checks - result.failed)} passed, ${result.failed} failed (${result.compiled} compiled, ${result.run} run)`);
  return result.failed === 0 ? 0 : 1;
}

process.exitCode = await main();
