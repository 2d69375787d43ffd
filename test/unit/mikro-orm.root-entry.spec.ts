import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importGraph } from '../fixtures/import-graph.js';

// `import 'nestjs-api-auth'` must work for an app without MikroORM installed: the root
// entry may not load @mikro-orm/* at run time, directly or through any file it imports.

const LIB = fileURLToPath(new URL('../../lib/', import.meta.url));
const run = promisify(execFile);

describe('the root entry without MikroORM', () => {
  it('has no @mikro-orm import anywhere in its run-time import graph (and the mikro-orm entry has)', async () => {
    const root = await importGraph(join(LIB, 'index.ts'));
    expect(root.files.size).toBeGreaterThan(5);
    expect([...root.packages].filter((p) => p.startsWith('@mikro-orm/'))).toEqual([]);
    expect([...root.files].filter((f) => f.includes('/mikro-orm/'))).toEqual([]);
    // The same walk does see MikroORM from the subpath entry: the check can fail.
    const sub = await importGraph(join(LIB, 'mikro-orm/index.ts'));
    expect([...sub.packages]).toContain('@mikro-orm/core');
  });

  describe('loaded by Node with every @mikro-orm/* resolution refused', () => {
    // Compiled inside the repository so bare imports (@nestjs/*) resolve from node_modules.
    const out = fileURLToPath(new URL(`../../node_modules/.cache/api-auth-root-entry-${randomBytes(4).toString('hex')}/`, import.meta.url));
    const hook = join(out, 'refuse-mikro-orm.mjs');

    beforeAll(async () => {
      // Only what the two entries reach: transpiling all of lib would be slower for nothing.
      const sources = new Set([
        ...(await importGraph(join(LIB, 'index.ts'))).files,
        ...(await importGraph(join(LIB, 'mikro-orm/index.ts'))).files,
      ]);
      for (const path of sources) {
        const file = relative(LIB, path);
        const { outputText } = ts.transpileModule(await readFile(path, 'utf8'), {
          compilerOptions: {
            module: ts.ModuleKind.ES2022,
            target: ts.ScriptTarget.ES2022,
            experimentalDecorators: true,
            emitDecoratorMetadata: true,
          },
        });
        const target = join(out, file.replace(/\.ts$/, '.js'));
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, outputText);
      }
      await writeFile(join(out, 'package.json'), '{ "type": "module" }\n');
      // A resolve hook standing in for "not installed": any attempt to load MikroORM fails.
      const resolveHook =
        'export async function resolve(specifier, context, next) {' +
        " if (specifier.startsWith('@mikro-orm/')) throw new Error('MIKRO_ORM_REQUESTED ' + specifier);" +
        ' return next(specifier, context); }';
      await writeFile(
        hook,
        `import { register } from 'node:module';\nregister('data:text/javascript,' + encodeURIComponent(${JSON.stringify(resolveHook)}));\n`,
      );
    }, 60_000);
    afterAll(async () => {
      await rm(out, { recursive: true, force: true });
    });

    const load = (entry: string) =>
      run(process.execPath, [
        '--import',
        hook,
        '--input-type=module',
        '-e',
        `import 'reflect-metadata'; const m = await import(${JSON.stringify(join(out, entry))}); console.log(JSON.stringify(Object.keys(m)));`,
      ], { cwd: out });

    it('imports the root entry and exposes the public API', async () => {
      const { stdout } = await load('index.js');
      const names = JSON.parse(stdout.trim()) as string[];
      expect(names).toEqual(expect.arrayContaining(['ApiAuthModule', 'ApiKeyGuard', 'ApiKeyService', 'MemoryBackend', 'API_KEY_BACKEND']));
    }, 30_000);

    it('fails the same way for the mikro-orm entry, so the hook really refuses MikroORM', async () => {
      await expect(load(relative(out, join(out, 'mikro-orm/index.js')))).rejects.toThrow(/MIKRO_ORM_REQUESTED @mikro-orm\/core/);
    }, 30_000);
  });
});
