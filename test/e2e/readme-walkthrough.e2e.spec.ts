import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCreateKeyCommand } from '../../lib/management/cli/create-key.command.js';
import { bootstrap } from '../../sample/main.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';

const run = promisify(execFile);
const DOC = new URL('../../docs/management.md', import.meta.url);

/** The fenced `sh` blocks of a Markdown fragment, in order. */
function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

/**
 * The walk-through as one bash script, plus what it promises: every line ending in
 * `# → <text>` must print exactly <text>. Such lines are wrapped to print their output
 * behind a marker; everything else runs untouched.
 */
async function walkthrough(): Promise<{ script: string; expected: string[] }> {
  const doc = await readFile(DOC, 'utf8');
  const section = /<!-- walkthrough:start -->([\s\S]*?)<!-- walkthrough:end -->/.exec(doc)?.[1];
  if (!section) throw new Error('docs/management.md has no walkthrough section');
  const expected: string[] = [];
  const lines = shellBlocks(section)
    .join('\n')
    .split('\n')
    .map((line) => {
      const annotated = /^(.*\S)\s+# → (.+)$/.exec(line);
      if (!annotated) return line;
      expected.push(annotated[2]!.trim());
      // Leading newline: the previous command's output may not end with one (curl's JSON does not).
      return `__out=$(${annotated[1]}); printf '\\n@@ %s\\n' "$__out"`;
    });
  return { script: ['set -euo pipefail', ...lines].join('\n'), expected };
}

async function runWalkthrough(base: string, adminKey: string) {
  const { script, expected } = await walkthrough();
  expect(expected.length).toBeGreaterThanOrEqual(6);
  const cwd = await mkdtemp(join(tmpdir(), 'walkthrough-'));
  try {
    const { stdout } = await run('bash', ['-c', script], {
      cwd,
      env: { ...process.env, BASE: base, ADMIN_KEY: adminKey },
      timeout: 30_000,
    });
    const results = stdout
      .split('\n')
      .filter((line) => line.startsWith('@@ '))
      .map((line) => line.slice(3));
    expect(results).toEqual(expected);
    return stdout;
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

/** Starts the sample as `npm run sample` would, and returns what it printed. */
async function startSample(env: Record<string, string>) {
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  const printed: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...args) => void printed.push(args.join(' ')));
  try {
    const sample = await bootstrap(0);
    return { ...sample, printed: printed.join('\n') };
  } finally {
    log.mockRestore();
  }
}

describe('the README walk-through, run as written against the sample', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
    vi.unstubAllEnvs();
  });

  it.each(['express', 'fastify'])('on the in-memory store, with the admin key the sample prints (%s)', async (adapter) => {
    const sample = await startSample({ API_AUTH_BACKEND: 'memory', HTTP_ADAPTER: adapter });
    close = () => sample.app.close();
    // What the reader copies into `export ADMIN_KEY=...`.
    const adminKey = /Admin key for owner "ops".*\n\s+(\S+)/.exec(sample.printed)?.[1];
    expect(adminKey).toMatch(/^demo_[0-9A-Za-z]{49}$/);

    const stdout = await runWalkthrough(sample.base, adminKey!);
    expect(stdout).toContain('"ownerId": "acme"');
    expect(stdout).not.toContain('keyHash');
  });

  it('on Redis, with the admin key from the documented create-key command', async () => {
    const namespace = uniqueNamespace('walkthrough');
    const redis = await connectRedis();
    try {
      const env = { API_AUTH_BACKEND: 'redis', REDIS_NAMESPACE: namespace, HTTP_ADAPTER: 'express' };
      for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);

      // The command line from the docs, with the compiled sample module swapped for its source.
      const doc = await readFile(DOC, 'utf8');
      const command = /\$\(node dist\/management\/cli\/main\.js create-key (.+)\)$/m.exec(doc)?.[1];
      expect(command).toBeDefined();
      const args = [...command!.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
      expect(args).toContain('dist-sample/app.module.js');
      let stdout = '';
      let stderr = '';
      const code = await runCreateKeyCommand(
        args.map((arg) => (arg === 'dist-sample/app.module.js' ? 'sample/app.module.ts' : arg)),
        { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), cwd: process.cwd() },
      );
      expect(code, stderr).toBe(0);
      const adminKey = stdout.trim();
      expect(adminKey).toMatch(/^demo_[0-9A-Za-z]{49}$/);

      const sample = await startSample(env);
      close = () => sample.app.close();
      // On a persistent store the sample prints no keys.
      expect(sample.printed).not.toMatch(/demo_[0-9A-Za-z]{49}/);
      await runWalkthrough(sample.base, adminKey);
    } finally {
      await close?.();
      close = undefined;
      await deleteNamespace(redis, namespace);
      await redis.close();
    }
  });
});
