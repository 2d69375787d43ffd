import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// The per-key features live in the root entry, which must load neither @nestjs/terminus
// (its own subpath entry) nor @nestjs/event-emitter (only typed structurally) nor Redis.

const LIB = fileURLToPath(new URL('../../lib/', import.meta.url));

/** Packages loaded at run time by every lib file reachable from `entry` (type-only imports are erased). */
async function runtimePackages(entry: string): Promise<Set<string>> {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const sf = ts.createSourceFile(file, await readFile(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    for (const node of sf.statements) {
      let specifier: string | undefined;
      if (ts.isImportDeclaration(node) && !node.importClause?.isTypeOnly) {
        const named = node.importClause?.namedBindings;
        const onlyTypes = !!named && ts.isNamedImports(named) && !node.importClause?.name && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
        if (!onlyTypes) specifier = (node.moduleSpecifier as ts.StringLiteral).text;
      } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && !node.isTypeOnly) {
        const clause = node.exportClause;
        const onlyTypes = !!clause && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((e) => e.isTypeOnly);
        if (!onlyTypes) specifier = (node.moduleSpecifier as ts.StringLiteral).text;
      }
      if (specifier === undefined) continue;
      if (specifier.startsWith('.')) queue.push(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
      else packages.add(specifier);
    }
  }
  return packages;
}

describe('entries of the per-key features', () => {
  it('the root entry loads no terminus, event emitter, Redis or cache-manager', async () => {
    const root = [...(await runtimePackages(join(LIB, 'index.ts')))];
    expect(root).toContain('@nestjs/common');
    expect(root.filter((p) => /^(@nestjs\/terminus|@nestjs\/event-emitter|eventemitter2|redis|@redis\/|cache-manager|keyv|@keyv\/)/.test(p))).toEqual([]);
  });

  it('nestjs-api-auth/terminus loads @nestjs/terminus, and still no Redis', async () => {
    const terminus = [...(await runtimePackages(join(LIB, 'terminus/index.ts')))];
    expect(terminus).toContain('@nestjs/terminus');
    expect(terminus.filter((p) => /^(redis|@redis\/|@mikro-orm\/)/.test(p))).toEqual([]);
  });
});
