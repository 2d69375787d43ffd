import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ts from 'typescript';
import type { Snippet } from './extract.js';

/** A snippet placed in the consumer workspace. */
export interface PlacedSnippet {
  snippet: Snippet;
  /** The `.ts` file it was written to. */
  source: string;
  /** The `.js` file it compiles to. */
  output: string;
}

/** A compile error, located in the page. */
export interface SnippetProblem {
  page: string;
  line: number;
  message: string;
}

/** What a strict consumer app uses: the options a NestJS 12 app on ESM compiles with. */
const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2022.d.ts'],
  types: ['node'],
  strict: true,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  esModuleInterop: true,
  skipLibCheck: true,
  noImplicitOverride: true,
  sourceMap: false,
};

const slug = (page: string) => page.replace(/\.md$/, '').replace(/[^\w]+/g, '-');

/**
 * Writes every compiled snippet into `<workspace>/src/`, one module each: a named one
 * (`file=orm.module.ts`) under its name, so a snippet on any page can import it as
 * `./orm.module.js`; the others under their page and line.
 */
export async function placeSnippets(workspace: string, snippets: Snippet[]): Promise<PlacedSnippet[]> {
  const placed: PlacedSnippet[] = [];
  const named = new Map<string, Snippet>();
  await mkdir(join(workspace, 'src'), { recursive: true });
  for (const snippet of snippets) {
    if (snippet.mode === 'partial') continue;
    if (snippet.fileName) {
      const first = named.get(snippet.fileName);
      if (first) throw new Error(`${snippet.page}:${snippet.line}: file=${snippet.fileName} is already ${first.page}:${first.line}`);
      named.set(snippet.fileName, snippet);
    }
    const name = snippet.fileName ?? `${slug(snippet.page)}-${snippet.line}.ts`;
    const source = join(workspace, 'src', name);
    // `export {}` makes a snippet without imports a module too, so snippets never share a scope.
    await writeFile(source, `${snippet.code}\n\nexport {};\n`);
    placed.push({ snippet, source, output: join(workspace, 'out', name.replace(/\.ts$/, '.js')) });
  }
  return placed;
}

/**
 * Type-checks and emits every placed snippet in one TypeScript program (one program
 * for all of them: a program per snippet would load Nest's types once per snippet).
 */
export function compileSnippets(workspace: string, placed: PlacedSnippet[]): SnippetProblem[] {
  const options = { ...COMPILER_OPTIONS, rootDir: join(workspace, 'src'), outDir: join(workspace, 'out') };
  const program = ts.createProgram(
    placed.map((p) => p.source),
    options,
  );
  const bySource = new Map(placed.map((p) => [p.source, p.snippet]));
  const problems: SnippetProblem[] = [];
  const diagnostics = [...program.getOptionsDiagnostics(), ...ts.getPreEmitDiagnostics(program)];
  for (const diagnostic of diagnostics) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const snippet = diagnostic.file ? bySource.get(diagnostic.file.fileName) : undefined;
    if (!snippet || diagnostic.start === undefined) {
      problems.push({ page: diagnostic.file?.fileName ?? '(compiler)', line: 0, message: `TS${diagnostic.code}: ${message}` });
      continue;
    }
    const { line } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start);
    problems.push({ page: snippet.page, line: snippet.line + line, message: `TS${diagnostic.code}: ${message}` });
  }
  program.emit();
  return problems;
}
