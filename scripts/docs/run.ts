import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { knex } from '@mikro-orm/postgresql';
import type { PlacedSnippet, SnippetProblem } from './compile.js';

/** The first key an app prints: `<prefix><secret><checksum>`, as the library mints them. */
const PRINTED_KEY = /\b([A-Za-z0-9]+_(?:[A-Za-z0-9]+_)?[0-9A-Za-z]{49})\b/;
const STARTUP_MS = 30_000;

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

/**
 * The shell block as one script, and what it promises: every line ending in
 * `# → <text>` must print exactly <text>. Such lines print their output behind a
 * marker; every other line runs as written.
 */
export function shellScript(lines: string[]): { script: string; expected: string[] } {
  const expected: string[] = [];
  const body = lines.map((line) => {
    const annotated = /^(.*\S)\s+# → (.+)$/.exec(line);
    if (!annotated) return line;
    expected.push(annotated[2]!.trim());
    return `__out=$(${annotated[1]}); printf '\\n@@ %s\\n' "$__out"`;
  });
  return { script: ['set -euo pipefail', ...body].join('\n'), expected };
}

async function withDatabase<T>(use: (url: string) => Promise<T>): Promise<T> {
  const base = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const name = `docs_${process.pid}_${Date.now()}`;
  // knex (MikroORM's own dependency) rather than pg directly: pg ships no type declarations.
  const admin = knex({ client: 'pg', connection: base, pool: { min: 0, max: 1 } });
  try {
    await admin.raw(`CREATE DATABASE ${name}`);
    const url = new URL(base);
    url.pathname = `/${name}`;
    return await use(url.toString());
  } finally {
    await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await admin.destroy();
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Waits for the app to print a key; rejects if it exits or stays silent too long. */
function printedKey(child: ChildProcess, output: { text: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`printed no API key within ${STARTUP_MS} ms`)), STARTUP_MS);
    const look = (chunk: Buffer) => {
      output.text += chunk.toString('utf8');
      const match = PRINTED_KEY.exec(output.text);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', (chunk: Buffer) => (output.text += chunk.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before printing an API key`));
    });
  });
}

async function runShell(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn('bash', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code: code ?? 1, stdout, stderr };
}

/**
 * Starts a `run` snippet's compiled app with `PORT` (and `DATABASE_URL` for `run db`),
 * waits for the key it prints, runs the page's shell block with `BASE` and `KEY` set,
 * and compares every `# →` answer. Stops the app (SIGTERM) in every case.
 */
export async function runSnippet(placed: PlacedSnippet, cwd: string): Promise<SnippetProblem[]> {
  const { snippet } = placed;
  const problem = (line: number, message: string): SnippetProblem[] => [{ page: snippet.page, line, message }];
  const go = async (databaseUrl?: string): Promise<SnippetProblem[]> => {
    const port = await freePort();
    const env = { ...process.env, PORT: String(port), ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) };
    const child = spawn(process.execPath, [placed.output], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = { text: '' };
    try {
      let key: string;
      try {
        key = await printedKey(child, output);
      } catch (error) {
        return problem(snippet.line, `the app ${(error as Error).message}\n${output.text.slice(-2_000)}`);
      }
      const { script, expected } = shellScript(snippet.answers!.lines);
      if (expected.length === 0) return problem(snippet.answers!.line, 'the bash block after a "run" snippet has no "# →" answer');
      const result = await runShell(script, { ...env, BASE: `http://127.0.0.1:${port}`, KEY: key });
      const got = result.stdout
        .split('\n')
        .filter((l) => l.startsWith('@@ '))
        .map((l) => l.slice(3));
      const wrong = expected
        .map((want, i) => (got[i] === want ? null : `answer ${i + 1}: documented "${want}", got "${got[i] ?? '(nothing)'}"`))
        .filter((m): m is string => m !== null);
      if (result.code !== 0) wrong.push(`the bash block exited with ${result.code}: ${result.stderr.slice(-1_000)}`);
      return wrong.length ? problem(snippet.answers!.line, wrong.join('\n')) : [];
    } finally {
      await stop(child);
    }
  };
  return snippet.needsDatabase ? withDatabase(go) : go();
}
