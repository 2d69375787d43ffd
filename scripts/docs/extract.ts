/**
 * Finds the TypeScript snippets of a Markdown page and what the page says about each.
 *
 * A snippet is a fenced block tagged `ts` or `typescript`. An HTML comment on the line
 * before the fence (blank lines allowed) marks it:
 *
 * - `<!-- snippet: partial -->`  a deliberate fragment: not compiled;
 * - `<!-- snippet: file=orm.module.ts -->`  compiled under that name, so snippets of
 *   any page can `import ... from './orm.module.js'` (each name once in all pages);
 * - `<!-- snippet: run -->`  a complete app: compiled, then started, and the first
 *   `bash`/`sh` block after it run against it, every `# → <text>` line checked;
 * - `run db`  the same, with `DATABASE_URL` set to a fresh, empty PostgreSQL database.
 *
 * Everything else is compiled as a module of its own.
 */

/** How the checker treats one snippet. */
export type SnippetMode = 'compile' | 'partial' | 'run';

/** One TypeScript snippet of a page. */
export interface Snippet {
  /** The page, as given to {@link extractSnippets}. */
  page: string;
  /** 1-based line of the snippet's first code line in the page. */
  line: number;
  code: string;
  mode: SnippetMode;
  /** `file=` of the marker: the module name other snippets of the page import it by. */
  fileName?: string;
  /** `run db`: the app gets a fresh database. */
  needsDatabase: boolean;
  /** For `run`: the shell lines that talk to the app, and the page line each starts on. */
  answers?: ShellCheck;
}

/** A shell block run against a `run` snippet's app. */
export interface ShellCheck {
  line: number;
  lines: string[];
}

const FENCE = /^(\s*)```\s*([\w-]*)\s*$/;
const MARKER = /^<!--\s*snippet:\s*(.*?)\s*-->\s*$/;
const TS = new Set(['ts', 'typescript']);
const SHELL = new Set(['sh', 'bash', 'shell']);

interface Block {
  lang: string;
  line: number;
  lines: string[];
  marker: string | null;
}

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  let marker: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    const markerMatch = MARKER.exec(text.trim());
    if (markerMatch) {
      marker = markerMatch[1]!;
      continue;
    }
    const fence = FENCE.exec(text);
    if (!fence) {
      if (text.trim() !== '') marker = null;
      continue;
    }
    const indent = fence[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]!); j++) body.push(lines[j]!.slice(indent));
    out.push({ lang: fence[2]!.toLowerCase(), line: i + 2, lines: body, marker });
    marker = null;
    i = j;
  }
  return out;
}

/** The TypeScript snippets of one page, in order, with their markers applied. */
export function extractSnippets(page: string, markdown: string): Snippet[] {
  const all = blocks(markdown);
  const snippets: Snippet[] = [];
  all.forEach((block, index) => {
    if (!TS.has(block.lang)) return;
    const words = (block.marker ?? '').split(/\s+/).filter(Boolean);
    const unknown = words.filter((w) => !/^(partial|run|db|file=[\w.-]+\.ts)$/.test(w));
    if (unknown.length > 0) throw new Error(`${page}:${block.line - 1}: unknown snippet marker "${unknown.join(' ')}"`);
    const mode: SnippetMode = words.includes('partial') ? 'partial' : words.includes('run') ? 'run' : 'compile';
    const snippet: Snippet = {
      page,
      line: block.line,
      code: block.lines.join('\n'),
      mode,
      needsDatabase: words.includes('db'),
    };
    const file = words.find((w) => w.startsWith('file='));
    if (file) snippet.fileName = file.slice('file='.length);
    if (mode === 'run') {
      const shell = all.slice(index + 1).find((b) => SHELL.has(b.lang));
      if (!shell) throw new Error(`${page}:${block.line}: a "run" snippet needs a bash block after it`);
      snippet.answers = { line: shell.line, lines: shell.lines };
    }
    snippets.push(snippet);
  });
  return snippets;
}
