// The MikroORM 7 column of docs/postgresql.md, top to bottom, as a user would follow it:
// every file and command is read from the page itself, in the order written, and run in
// a fresh project directory against an empty database of its own. Step 1 (npm i) is this
// folder's lockfile, whose versions are the page's pins; the package is the tarball
// .ci/compat.sh packed. Prints "ok <step>" or "FAILED <step>" per step and exits.
//
// Usage (Node 24): node compat/migrations7/walkthrough.mjs <tarball> <database url>
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [tarball, databaseUrl] = process.argv.slice(2);
if (!tarball || !databaseUrl) throw new Error('usage: walkthrough.mjs <tarball> <database url>');
const here = dirname(fileURLToPath(import.meta.url));
const page = readFileSync(join(here, '../../docs/postgresql.md'), 'utf8');

/** Code blocks of the page from the heading `from` to the next `## ` heading. */
function blocks(from) {
  const text = `\n${page}`;
  const start = text.indexOf(`\n${from}\n`);
  if (start < 0) throw new Error(`docs/postgresql.md has no heading "${from}"`);
  const end = text.indexOf('\n## ', start + from.length + 2);
  const part = text.slice(start, end < 0 ? undefined : end);
  const found = [];
  for (const match of part.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)) {
    // The file a block is, from the paragraph right above it naming `src/<file>`.
    const above = part.slice(0, match.index).replace(/^<!--.*-->\n/gm, '').trimEnd();
    const before = above.slice(above.lastIndexOf('\n\n') + 2);
    const file = /`(src\/[\w.-]+\.ts|tsconfig\.json)`/.exec(before)?.[1] ?? (match[1] === 'json' && /tsconfig\.json/.test(before) ? 'tsconfig.json' : null);
    found.push({ lang: match[1], code: match[2], file });
  }
  return found;
}

let passed = 0;
let failed = 0;
function step(name, fn) {
  try {
    const detail = fn();
    passed++;
    console.log(`ok ${name}${detail ? ` (${detail})` : ''}`);
    return true;
  } catch (error) {
    failed++;
    console.log(`FAILED ${name}: ${String(error?.stderr ?? '') || error?.message || error}`);
    return false;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'api-auth-walkthrough7-'));
const env = { ...process.env, DATABASE_URL: databaseUrl, NO_COLOR: '1', FORCE_COLOR: '0' };
const run = (command, args) => execFileSync(command, args, { cwd: dir, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });

try {
  // Step 1, npm i: this folder's installed packages, and the packed tarball in place of
  // the registry's nestjs-api-auth.
  step('1. install: the page pins, with the packed tarball', () => {
    const modules = join(here, 'node_modules');
    rmSync(join(modules, 'nestjs-api-auth'), { recursive: true, force: true });
    mkdirSync(join(modules, 'nestjs-api-auth'));
    execFileSync('tar', ['xzf', tarball, '-C', join(modules, 'nestjs-api-auth'), '--strip-components=1']);
    symlinkSync(modules, join(dir, 'node_modules'));
    // What `npm i` would have written: the CLI finds the ORM's packages there.
    const manifest = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
    manifest.dependencies['nestjs-api-auth'] = `file:${tarball}`;
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...manifest, name: 'walkthrough', description: undefined }, null, 2));
    const versions = ['core', 'migrations', 'cli'].map((p) => JSON.parse(readFileSync(join(modules, `@mikro-orm/${p}/package.json`), 'utf8')).version);
    return `@mikro-orm/core, migrations, cli: ${versions.join(', ')}`;
  });

  // The shared setup: tsconfig.json and src/app.controller.ts.
  const shared = blocks('# PostgreSQL through MikroORM: a walk-through').filter((b) => b.file);
  const v7 = blocks('## MikroORM 7 (Node 22.17 or later)');
  const run4 = blocks('## 4. Run it (both majors)');
  const files = [...shared, ...v7.filter((b) => b.file), ...run4.filter((b) => b.file)];
  step('the page names every file it shows', () => {
    const names = files.map((b) => b.file).sort();
    const want = ['src/app.controller.ts', 'src/app.module.ts', 'src/issue-key.ts', 'src/main.ts', 'src/mikro-orm.config.ts', 'tsconfig.json'];
    if (JSON.stringify(names) !== JSON.stringify(want)) throw new Error(`files: ${names.join(', ')}`);
  });
  for (const { file, code } of files) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), code);
  }

  // Step 2, the table first: the page's migration commands, as written.
  const commands = v7
    .filter((b) => b.lang === 'bash')
    .flatMap((b) => b.code.split('\n'))
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter((line) => line.startsWith('npx mikro-orm'));
  step('2. the table first: the page has migration:create --initial and migration:up', () => {
    if (commands.length !== 2) throw new Error(`commands: ${commands.join(' | ')}`);
    return commands.join('; ');
  });
  for (const command of commands) {
    const [, ...args] = command.split(/\s+/);
    step(`2. ${command}`, () => run('npx', ['--no-install', ...args]).trim().split('\n').at(-1));
  }
  step('2. the migration created api_keys, its unique hash and its indexes', () => {
    const migrations = readdirSync(join(dir, 'src/migrations')).filter((f) => f.startsWith('Migration'));
    if (migrations.length !== 1) throw new Error(`migrations: ${migrations.join(', ')}`);
    const sql = readFileSync(join(dir, 'src/migrations', migrations[0]), 'utf8');
    for (const expected of ['create table "api_keys"', 'api_keys_key_hash_unique', 'api_keys_owner_id_created_at_id_index']) {
      if (!sql.includes(expected)) throw new Error(`${migrations[0]} lacks ${expected}`);
    }
    const tables = execFileSync('psql', [databaseUrl, '-Atc', "select count(*) from information_schema.tables where table_name in ('api_keys', 'mikro_orm_migrations')"], { encoding: 'utf8' }).trim();
    if (tables !== '2') throw new Error(`tables api_keys and mikro_orm_migrations: ${tables} of 2`);
    return migrations[0];
  });

  // Step 3 and 4: compile, mint the first key, serve it, close.
  step('4. npx tsc -p tsconfig.json', () => void run('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json']));
  let key = '';
  step('4. node dist/issue-key.js prints a key and exits by itself', () => {
    key = run(process.execPath, ['dist/issue-key.js']).trim();
    if (!/^prod_[0-9A-Za-z]{40,}$/.test(key)) throw new Error('no key printed');
  });
  const served = await serve(key);
  step('4. node dist/main.js: 200 with the key, 401 missing_api_key without, exits on SIGTERM', () => {
    if (served.error) throw served.error;
    return served.detail;
  });
} finally {
  if (process.env.WALKTHROUGH_KEEP) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
  rmSync(join(here, 'node_modules/nestjs-api-auth'), { recursive: true, force: true });
}
console.log(`walkthrough: ${passed} passed, ${failed} failed (${Math.round(performance.now() / 1000)} s)`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);

/** Starts dist/main.js on a free port, calls /hello with and without the key, sends SIGTERM, and waits for the exit. */
async function serve(key) {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = spawn(process.execPath, ['dist/main.js'], { cwd: dir, env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    const url = `http://127.0.0.1:${port}/hello`;
    let withKey;
    for (let i = 0; i < 100 && !withKey; i++) {
      withKey = await fetch(url, { headers: { 'X-API-Key': key } }).catch(() => new Promise((r) => setTimeout(() => r(undefined), 100)));
    }
    if (!withKey) throw new Error(`never listened: ${output}`);
    const body = await withKey.json();
    if (withKey.status !== 200 || body.message !== 'Hello, alice!') throw new Error(`with the key: ${withKey.status} ${JSON.stringify(body)}`);
    const without = await fetch(url);
    const refusal = await without.json();
    if (without.status !== 401 || refusal.code !== 'missing_api_key') throw new Error(`without a key: ${without.status} ${JSON.stringify(refusal)}`);
    child.kill('SIGTERM');
    const timeout = new Promise((resolve) => setTimeout(() => resolve(null), 10_000));
    const exit = await Promise.race([exited, timeout]);
    if (!exit) throw new Error('did not exit within 10 s of SIGTERM');
    if (/ERROR/.test(output)) throw new Error(`logged an error: ${output}`);
    return { detail: `exit ${exit.code ?? exit.signal}` };
  } catch (error) {
    child.kill('SIGKILL');
    return { error };
  }
}
