import { mkdtemp, readdir, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throw-away consumer project: `node_modules` holds the repository's dependencies
 * (as links) and `nestjs-api-auth` linked to the repository itself, so snippets resolve
 * the package through its `exports` map and its built `dist/`, as a user's app would,
 * never through the sources.
 */
export async function createConsumerWorkspace(repoRoot: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'docs-check-'));
  const modules = join(dir, 'node_modules');
  await mkdir(modules);
  const installed = join(repoRoot, 'node_modules');
  for (const entry of await readdir(installed)) {
    if (entry === '.bin' || entry === 'nestjs-api-auth') continue;
    await symlink(join(installed, entry), join(modules, entry));
  }
  await symlink(repoRoot, join(modules, 'nestjs-api-auth'), 'dir');
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'docs-consumer', private: true, type: 'module' }));
  return dir;
}
