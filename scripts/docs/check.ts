import { readFile, rm } from 'node:fs/promises';
import { relative } from 'node:path';
import { compileSnippets, placeSnippets, type SnippetProblem } from './compile.js';
import { extractSnippets, type Snippet } from './extract.js';
import { runSnippet } from './run.js';
import { createConsumerWorkspace } from './workspace.js';

/** What one check found. */
export interface DocsCheckResult {
  snippets: Snippet[];
  compiled: number;
  run: number;
  partial: number;
  /** Snippets that failed to compile or to give their documented answers. */
  failed: number;
  problems: SnippetProblem[];
}

/**
 * Checks the TypeScript snippets of `pages` (Markdown files): every one not marked
 * partial is compiled strictly in one program against the built package, as a consumer
 * imports it, and every `run` snippet is started and its documented answers checked.
 */
export async function checkDocs(repoRoot: string, pages: string[]): Promise<DocsCheckResult> {
  const snippets: Snippet[] = [];
  for (const page of pages) snippets.push(...extractSnippets(relative(repoRoot, page), await readFile(page, 'utf8')));
  const workspace = await createConsumerWorkspace(repoRoot);
  try {
    const placed = await placeSnippets(workspace, snippets);
    const problems = compileSnippets(workspace, placed);
    const broken = new Set(problems.map((p) => `${p.page}:${p.line}`));
    const failedSnippets = new Set<Snippet>();
    for (const p of placed) {
      const lines = p.snippet.code.split('\n').length;
      for (let l = p.snippet.line; l < p.snippet.line + lines; l++) if (broken.has(`${p.snippet.page}:${l}`)) failedSnippets.add(p.snippet);
    }
    let run = 0;
    for (const p of placed) {
      if (p.snippet.mode !== 'run' || failedSnippets.has(p.snippet)) continue;
      run++;
      const found = await runSnippet(p, workspace);
      if (found.length) failedSnippets.add(p.snippet);
      problems.push(...found);
    }
    const unplaced = problems.filter((p) => p.line === 0).length;
    return {
      snippets,
      compiled: placed.length,
      run,
      partial: snippets.length - placed.length,
      failed: failedSnippets.size + unplaced,
      problems,
    };
  } finally {
    await rm(workspace, { recursive: true, force: true });
  }
}
