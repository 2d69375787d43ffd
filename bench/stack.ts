/**
 * Which stack the bench server runs on. By default this repository's: the machine's
 * Node and its node_modules (MikroORM 6). With `BENCH_STACK=node24`, the compatibility
 * stack: Node 24 from `.ci/node.sh` and compat/node24's node_modules (MikroORM 7, the
 * current @nestjs/*). The runner itself (load generator, tables) stays where it is.
 *
 * For node24 the compiled bench and the built package are copied into
 * compat/node24/.bench/, so that Node resolves every bare import of the server, and
 * of the package, from compat/node24/node_modules: one copy of each, never the
 * repository's MikroORM 6. compat/node24 must be installed (`.ci/compat.sh` does it).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const NODE24_VERSION = '24.22.3';

export interface BenchStack {
  /** For the header of the table. */
  label: string;
  /** The Node binary the server runs on. */
  execPath: string;
  /** The compiled bench directory the server is started from. */
  dir: URL;
}

const repo = new URL('../', import.meta.url);

/** The stack named by `BENCH_STACK` (`node24`, else this repository's). */
export function benchStack(): BenchStack {
  const here = new URL('./', import.meta.url);
  if ((process.env.BENCH_STACK ?? '') === '') return { label: `Node ${process.version}, ${ormOf(repo)}`, execPath: process.execPath, dir: here };
  if (process.env.BENCH_STACK !== 'node24') throw new Error(`BENCH_STACK: "node24" or unset, got ${process.env.BENCH_STACK}`);
  const compat = new URL('compat/node24/', repo);
  if (!existsSync(new URL('node_modules/@mikro-orm/core/package.json', compat))) {
    throw new Error('BENCH_STACK=node24: compat/node24 is not installed; run .ci/compat.sh once (or npm ci there on Node 24).');
  }
  const execPath = execFileSync(fileURLToPath(new URL('.ci/node.sh', repo)), [NODE24_VERSION], { encoding: 'utf8' }).trim();
  const dir = new URL('.bench/', compat);
  rmSync(dir, { recursive: true, force: true });
  const pkg = new URL('node_modules/nestjs-api-auth/', dir);
  mkdirSync(pkg, { recursive: true });
  for (const file of readdirSync(here)) if (file.endsWith('.js')) cpSync(new URL(file, here), new URL(file, dir));
  cpSync(new URL('dist/', repo), new URL('dist/', pkg), { recursive: true });
  cpSync(new URL('package.json', repo), new URL('package.json', pkg));
  return { label: `Node ${execFileSync(execPath, ['-v'], { encoding: 'utf8' }).trim()}, ${ormOf(compat)} (compat/node24)`, execPath, dir };
}

function ormOf(root: URL): string {
  const { version } = JSON.parse(readFileSync(new URL('node_modules/@mikro-orm/core/package.json', root), 'utf8')) as { version: string };
  return `MikroORM ${version}`;
}
