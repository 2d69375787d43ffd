import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDocs, type DocsCheckResult } from '../../scripts/docs/check.js';
import { extractSnippets } from '../../scripts/docs/extract.js';
import { shellScript } from '../../scripts/docs/run.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const fence = (lang: string, code: string) => `\`\`\`${lang}\n${code}\n\`\`\``;

// Only @nestjs packages, so this test does not depend on a build of the library.
const GOOD = `import { Injectable } from '@nestjs/common';

@Injectable()
export class Greeter {
  greet(name: string): string {
    return \`Hello, \${name}\`;
  }
}`;

// The README's old Events snippet, in miniature: a provider used before its declaration.
const BROKEN = `import { Injectable, Module } from '@nestjs/common';

@Module({ providers: [KeyAudit] })
export class AppModule {}

@Injectable()
export class KeyAudit {}`;

const APP = `import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

@Controller('hello')
class HelloController {
  @Get()
  hello() {
    return { message: 'hi' };
  }
}

@Module({ controllers: [HelloController] })
class AppModule {}

const app = await NestFactory.create(AppModule, { logger: false });
app.enableShutdownHooks();
await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
console.log(\`Your key: demo_\${'a'.repeat(49)}\`);`;

const PAGE = [
  '# A page',
  fence('ts', GOOD),
  '<!-- snippet: partial -->',
  fence('ts', 'const notANumber: number = "a fragment nobody compiles";'),
  'Text between.',
  fence('ts', BROKEN),
  '<!-- snippet: run -->',
  fence('ts', APP),
  fence(
    'bash',
    [
      `curl -s "$BASE/hello"                                            # → {"message":"hi"}`,
      `echo "$KEY" | cut -c1-5                                          # → demo_`,
      `curl -s -o /dev/null -w '%{http_code}' "$BASE/hello"             # → 201`,
    ].join('\n'),
  ),
].join('\n\n');

describe('extractSnippets', () => {
  it('reads the markers: partial, file=, run (with the shell block after it)', () => {
    const page = [
      '<!-- snippet: file=orm.module.ts -->',
      fence('ts', 'export const a = 1;'),
      '<!-- snippet: partial -->',
      '',
      fence('typescript', 'a fragment'),
      fence('json', '{}'),
      '<!-- snippet: run db -->',
      fence('ts', 'run me'),
      fence('sh', 'curl x # → 200'),
    ].join('\n');
    const snippets = extractSnippets('p.md', page);
    expect(snippets.map((s) => [s.line, s.mode, s.fileName, s.needsDatabase])).toEqual([
      [3, 'compile', 'orm.module.ts', false],
      [8, 'partial', undefined, false],
      [15, 'run', undefined, true],
    ]);
    expect(snippets[2]!.answers).toEqual({ line: 18, lines: ['curl x # → 200'] });
  });

  it('refuses a marker it does not know, rather than compiling the snippet some other way', () => {
    expect(() => extractSnippets('p.md', `<!-- snippet: partal -->\n${fence('ts', 'x')}`)).toThrow(/p\.md:2: unknown snippet marker "partal"/);
  });

  it('turns "# →" lines into checked commands and leaves the others as written', () => {
    const { script, expected } = shellScript(['export A=1', 'echo "$A"   # → 1']);
    expect(expected).toEqual(['1']);
    expect(script.split('\n')).toEqual(['set -euo pipefail', 'export A=1', `__out=$(echo "$A"); printf '\\n@@ %s\\n' "$__out"`]);
  });
});

describe('checkDocs on a page with a broken snippet and a wrong documented answer', () => {
  let dir: string;
  let result: DocsCheckResult;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'docs-check-spec-'));
    await writeFile(join(dir, 'page.md'), PAGE);
    result = await checkDocs(repoRoot, [join(dir, 'page.md')]);
  }, 120_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('fails, and says where: the snippet used before its declaration, at its page line', () => {
    const page = result.problems.find((p) => p.message.includes('KeyAudit'))!;
    expect(page).toBeDefined();
    expect(page.message).toMatch(/TS2449: Class 'KeyAudit' used before its declaration/);
    const brokenLine = PAGE.split('\n').indexOf('@Module({ providers: [KeyAudit] })') + 1;
    expect(page.line).toBe(brokenLine);
  });

  it('runs the app, checks every answer, and reports the one the app does not give', () => {
    const answers = result.problems.filter((p) => p.message.startsWith('answer'));
    expect(answers).toHaveLength(1);
    expect(answers[0]!.message).toBe('answer 3: documented "201", got "200"');
  });

  it('counts what it did: the partial snippet skipped, not failed', () => {
    expect({ compiled: result.compiled, run: result.run, partial: result.partial, failed: result.failed }).toEqual({
      compiled: 3,
      run: 1,
      partial: 1,
      failed: 2,
    });
  });
});
