/**
 * `npm run bench:instructions`: the benchmark's routes measured in CPU instructions
 * per request, counted by valgrind's callgrind in the server process, instead of
 * requests per second.
 *
 * Why: on a small shared VM, single 2 s runs of one route range over ±15 % and more,
 * so `npm run bench` needs many paired rounds to tell a few percent apart. An
 * instruction count does not depend on what else the machine is doing. It is not
 * time: a cache miss or a branch mispredicted costs cycles that no count shows, so
 * it complements the HTTP table, it does not replace it.
 *
 * How: bench/server.ts runs under callgrind with instrumentation off. For each case,
 * the runner sends warm-up requests (uncounted, at near native speed, so the JIT
 * reaches its steady state; every case first, then again before each count), switches counting on (`callgrind_control -i on`), sends
 * the measured requests from this process, switches it off and dumps the counts. The
 * optimizing compiler's work (TurboFan and Maglev, on background threads) is reported
 * apart and left out of the per-request figure: it is warm-up that valgrind's slowness
 * stretches over more requests than it takes natively.
 *
 * Environment: BENCH_ADAPTERS (default "express,fastify", run side by side),
 * BENCH_CASES (as for `npm run bench`; default memory, cached, redis, the malformed
 * flood and Passport, with the bare route and their floors), BENCH_WARMUP (requests per
 * case before any is counted, default 5000), BENCH_REQUESTS (counted requests per case
 * and round, default 1500), BENCH_ROUNDS (default 3; every other round runs the cases
 * in reverse order; the median is reported), BENCH_FUNCTIONS (N: also list each case's
 * N costliest functions, JIT code named through node's --perf-basic-prof map),
 * BENCH_KEEP (a directory: keeps each count's callgrind dump as
 * `<adapter>-<case>-<round>`, and with BENCH_FUNCTIONS the JIT map as
 * `<adapter>-perf.map`, for `callgrind_annotate --tree=caller`: who calls what),
 * BENCH_CACHE_SIM=1 (also simulate the caches: misses per request and a cycle
 * estimate, for code whose cost is in cache misses more than in instructions),
 * BENCH_STACK ("node24": the server on Node 24 with compat/node24's MikroORM 7; see stack.ts),
 * BENCH_RECORD_ENCODING (the `recordEncoding` of route (e), default 3). The cases
 * `redis-encoding2` ((e) with encoding 2), `redis-nomemo` ((e) with `decodeCacheSize: 0`:
 * the record decoded on every request), `redis-churn` ((e) sent 64 keys in turn with a
 * memo of 16: every request a memo miss) and `redis-floor-nil` (the floor for (e) as it
 * was before issue 22, a GET answered nil) run only when BENCH_CASES names them.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { waitForMessage } from './ipc.js';
import { median } from './median.js';
import { benchCases, floorOf, type Case, type Ready } from './cases.js';
import { benchStack, type BenchStack } from './stack.js';

const ADAPTERS = (process.env.BENCH_ADAPTERS ?? 'express,fastify').split(',');
/** The routes the targets are about; with the bare route and their floors. Counting is slow. */
const DEFAULT_CASES = 'memory,cached,redis,flood-malformed,passport';
const ONLY = new Set((process.env.BENCH_CASES ?? DEFAULT_CASES).split(','));
const WARMUP = Number(process.env.BENCH_WARMUP ?? 5000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** With BENCH_FUNCTIONS=N, the N functions that cost each case most, per request. */
const TOP_FUNCTIONS = Number(process.env.BENCH_FUNCTIONS ?? 0);
/** With BENCH_KEEP=dir, where the callgrind dumps (and the JIT map) are kept. */
const KEEP = process.env.BENCH_KEEP;
/** With BENCH_CACHE_SIM=1, callgrind also simulates the CPU caches (about twice as slow). */
const CACHE_SIM = process.env.BENCH_CACHE_SIM === '1';
/** Uncounted requests sent to a route again right before each count. */
const REWARM = 1500;
/** Requests in flight at once: enough to keep the server busy, few enough not to queue. */
const CONCURRENCY = 8;

/** Functions of V8's optimizing compilers, whose work is reported apart. */
const COMPILER = /compiler::|maglev|turboshaft/i;

interface Counted {
  name: string;
  label: string;
  /** Instructions per counted request, the optimizing compiler left out. */
  perRequest: number;
  /** (max - min) / median of `perRequest` over rounds. */
  spread: number;
  /** The optimizing compiler's instructions per counted request. */
  compilerPerRequest: number;
  wrongStatus: number;
  /** The case this one is divided by. */
  floor: string;
  /** With BENCH_FUNCTIONS: the costliest functions, instructions per request (mean over rounds). */
  topFunctions: Array<[string, number]>;
  /** With BENCH_CACHE_SIM: simulated cache misses and estimated cycles per request (medians). */
  cache?: CacheCost;
}

interface CacheCost {
  /** Level-1 instruction cache misses. */
  l1i: number;
  /** Level-1 data cache misses, reads and writes. */
  l1d: number;
  /** Last-level cache misses, instructions and data. */
  ll: number;
  /** KCachegrind's cycle estimate, Ir + 10 x L1 misses + 100 x LL misses, compiler left out of Ir. */
  cycles: number;
  /** (max - min) / median of `cycles` over rounds. */
  spread: number;
}

/** Per-event totals of a dump, from its `events:` and `totals:` lines. */
function readTotals(file: string): Record<string, number> {
  const text = readFileSync(file, 'utf8');
  const events = /^events: (.*)$/m.exec(text)?.[1]?.split(' ') ?? [];
  const totals = /^totals: (.*)$/m.exec(text)?.[1]?.split(' ').map(Number) ?? [];
  return Object.fromEntries(events.map((event, i) => [event, totals[i] ?? 0]));
}

/** Medians over rounds of the simulated misses per request, and the cycle estimate. */
function cacheCost(rounds: Array<{ compiler: number; totals: Record<string, number> }>): CacheCost {
  const per = (x: { totals: Record<string, number> }, ...events: string[]) => events.reduce((a, e) => a + (x.totals[e] ?? 0), 0) / REQUESTS;
  const cycles = rounds.map(
    (x) => per(x, 'Ir') - x.compiler / REQUESTS + 10 * per(x, 'I1mr', 'D1mr', 'D1mw') + 100 * per(x, 'ILmr', 'DLmr', 'DLmw'),
  );
  return {
    l1i: median(rounds.map((x) => per(x, 'I1mr'))),
    l1d: median(rounds.map((x) => per(x, 'D1mr', 'D1mw'))),
    ll: median(rounds.map((x) => per(x, 'ILmr', 'DLmr', 'DLmw'))),
    cycles: median(cycles),
    spread: (Math.max(...cycles) - Math.min(...cycles)) / median(cycles),
  };
}

function requireTools(): void {
  for (const [tool, args] of [
    ['valgrind', ['--version']],
    ['callgrind_control', ['--version']],
    ['callgrind_annotate', ['--version']],
  ] as const) {
    try {
      execFileSync(tool, args, { stdio: 'ignore' });
    } catch (error) {
      // callgrind_annotate --version exits with 255 after printing it; only a missing tool is fatal.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error(`${tool} is not installed; it comes with valgrind (apt-get install valgrind).`);
      }
    }
  }
}

/** Sends `count` requests to `path`, `CONCURRENCY` at a time, cycling through `keys`; returns how many got another status. */
async function send(agent: http.Agent, port: number, c: Case, count: number): Promise<number> {
  let started = 0;
  let wrong = 0;
  const one = (key: string | undefined) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: `/${c.route}`, agent, headers: key === undefined ? {} : { 'x-api-key': key } }, (res) => {
        if (res.statusCode !== c.expect) wrong++;
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (started < count) {
        const i = started++;
        await one(c.keys.length ? c.keys[i % c.keys.length] : undefined);
      }
    }),
  );
  return wrong;
}

function callgrindControl(pid: number, ...args: string[]): void {
  execFileSync('callgrind_control', [...args, String(pid)], { stdio: 'ignore' });
}

/** Total instructions in a dump, those in the optimizing compiler's functions, and each function's. */
function readDump(file: string): { total: number; compiler: number; functions: Map<string, number> } {
  // --show=Ir: with BENCH_CACHE_SIM the dump holds more events, one column each.
  const text = execFileSync('callgrind_annotate', ['--show=Ir', '--inclusive=no', '--threshold=100', file], { maxBuffer: 256 * 1024 * 1024 }).toString();
  let total = 0;
  let compiler = 0;
  const functions = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (!match || match[2]!.includes('PROGRAM TOTALS')) continue;
    const count = Number(match[1]!.replaceAll(',', ''));
    total += count;
    if (COMPILER.test(match[2]!)) compiler += count;
    else functions.set(match[2]!, (functions.get(match[2]!) ?? 0) + count);
  }
  return { total, compiler, functions };
}

/**
 * Names for callgrind's functions: native symbols as callgrind_annotate prints them,
 * and JIT code (which callgrind knows only by address) through the map V8 writes with
 * `--perf-basic-prof`. Functions with the same name are added together.
 */
function nameFunctions(functions: Map<string, number>, perfMap: string): Map<string, number> {
  const ranges = readFileSync(perfMap, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [start, size, ...name] = line.split(' ');
      return { start: parseInt(start!, 16), end: parseInt(start!, 16) + parseInt(size!, 16), name: name.join(' ') };
    })
    .sort((a, b) => a.start - b.start);
  const jitName = (address: number): string => {
    let lo = 0;
    let hi = ranges.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (ranges[mid]!.start <= address) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found >= 0 && address < ranges[found]!.end ? `JIT ${ranges[found]!.name}` : 'JIT (unnamed)';
  };
  const named = new Map<string, number>();
  for (const [raw, count] of functions) {
    const symbol = raw.replace(/\s*\[[^\]]*\]$/, '').replace(/^\?\?\?:/, '');
    const address = /^0x([0-9a-f]+)/.exec(symbol);
    const name = address ? jitName(parseInt(address[1]!, 16)) : symbol.replace(/\(.*$/, '');
    named.set(name, (named.get(name) ?? 0) + count);
  }
  return named;
}

async function countAdapter(adapter: string, stack: BenchStack): Promise<Counted[]> {
  const dir = mkdtempSync(join(os.tmpdir(), `bench-instructions-${adapter}-`));
  const out = join(dir, 'callgrind.out');
  const server = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      ...(CACHE_SIM ? ['--cache-sim=yes'] : []),
      // V8 writes and rewrites machine code in memory; valgrind must notice.
      '--smc-check=all-non-file',
      `--callgrind-out-file=${out}`,
      `--log-file=${join(dir, 'valgrind.log')}`,
      stack.execPath,
      // V8's map of its JIT code, to name what callgrind knows only by address.
      ...(TOP_FUNCTIONS > 0 ? ['--perf-basic-prof'] : []),
      new URL('server.js', stack.dir).pathname,
      adapter,
    ],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    const ready = await waitForMessage<Ready>(server, 'ready');
    const cases = benchCases(ready, ONLY);
    // Every route warm before any is counted, as in `npm run bench`.
    for (const c of cases) await send(agent, ready.port, c, WARMUP);
    const samples = new Map<string, Array<{ total: number; compiler: number; wrong: number; totals: Record<string, number> }>>(cases.map((c) => [c.name, []]));
    const functions = new Map<string, Map<string, number>>(cases.map((c) => [c.name, new Map()]));
    let dumps = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of round % 2 ? [...cases].reverse() : cases) {
        // Re-warm after the previous route: its garbage and its code are not this one's.
        await send(agent, ready.port, c, REWARM);
        callgrindControl(server.pid!, '-i', 'on');
        const wrong = await send(agent, ready.port, c, REQUESTS);
        callgrindControl(server.pid!, '-i', 'off');
        // Each dump is written as `<out>.<n>` and zeroes the counts.
        callgrindControl(server.pid!, '-d');
        const file = `${out}.${++dumps}`;
        await waitForFile(dir, file);
        const dump = readDump(file);
        const sample = { total: dump.total, compiler: dump.compiler, wrong, totals: CACHE_SIM ? readTotals(file) : {} };
        samples.get(c.name)!.push(sample);
        const perCase = functions.get(c.name)!;
        for (const [fn, count] of dump.functions) perCase.set(fn, (perCase.get(fn) ?? 0) + count);
        if (process.env.BENCH_VERBOSE) process.stderr.write(`  ${adapter} ${c.name}: ${Math.round((sample.total - sample.compiler) / REQUESTS)} (+${Math.round(sample.compiler / REQUESTS)} compiler)\n`);
        if (KEEP) copyFileSync(file, join(KEEP, `${adapter}-${c.name}-${round}`));
        rmSync(file);
      }
      process.stderr.write(`  ${adapter}: round ${round + 1} of ${ROUNDS} counted\n`);
    }
    const counted: Counted[] = cases.map((c) => {
      const s = samples.get(c.name)!;
      const perRequest = s.map((x) => (x.total - x.compiler) / REQUESTS);
      return {
        name: c.name,
        label: c.label,
        perRequest: median(perRequest),
        spread: (Math.max(...perRequest) - Math.min(...perRequest)) / median(perRequest),
        compilerPerRequest: median(s.map((x) => x.compiler / REQUESTS)),
        wrongStatus: s.reduce((a, x) => a + x.wrong, 0),
        floor: floorOf(c),
        topFunctions: [] as Array<[string, number]>,
        cache: CACHE_SIM ? cacheCost(s) : undefined,
      };
    });
    if (TOP_FUNCTIONS > 0) {
      const perfMap = join(os.tmpdir(), `perf-${server.pid}.map`);
      for (const row of counted) {
        const named = nameFunctions(functions.get(row.name)!, perfMap);
        row.topFunctions = [...named]
          .sort((a, b) => b[1] - a[1])
          .slice(0, TOP_FUNCTIONS)
          .map(([fn, count]) => [fn, count / (REQUESTS * ROUNDS)] as [string, number]);
      }
      if (KEEP) copyFileSync(perfMap, join(KEEP, `${adapter}-perf.map`));
      rmSync(perfMap, { force: true });
    }
    server.send({ type: 'stop' });
    await new Promise((resolve) => server.once('exit', resolve));
    return counted;
  } finally {
    agent.destroy();
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `callgrind_control -d` returns once the command is sent; the dump follows shortly. */
async function waitForFile(dir: string, file: string): Promise<void> {
  const name = file.slice(dir.length + 1);
  for (let i = 0; i < 600; i++) {
    if (readdirSync(dir).includes(name)) {
      // Give valgrind a moment to finish writing it.
      await new Promise((resolve) => setTimeout(resolve, 500));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`callgrind wrote no dump ${file}`);
}

async function main() {
  requireTools();
  if (KEEP) mkdirSync(KEEP, { recursive: true });
  const valgrind = execFileSync('valgrind', ['--version']).toString().trim();
  const stack = benchStack();
  const header =
    `server on ${stack.label}, ${valgrind} (callgrind), ${WARMUP} warm-up requests per case, then ${ROUNDS} rounds of ` +
    `${REWARM} uncounted and ${REQUESTS} counted requests per case, ${CONCURRENCY} in flight`;
  console.log(`nestjs-api-auth benchmark, CPU instructions per request: ${header}\n`);
  const started = Date.now();
  const results = await Promise.all(ADAPTERS.map(async (adapter) => [adapter, await countAdapter(adapter, stack)] as const));
  for (const [adapter, rows] of results) {
    const byName = new Map(rows.map((r) => [r.name, r]));
    const bare = byName.get('bare')!.perRequest;
    console.log(`### ${adapter}\n`);
    console.log('| scenario | instructions per request | spread over rounds | ratio to (a) | ratio to its floor | optimizing compiler, left out | wrong status |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const floor = byName.get(r.floor)?.perRequest ?? NaN;
      console.log(
        `| ${r.label} | ${Math.round(r.perRequest)} | ${(r.spread * 100).toFixed(1)}% | ${(bare / r.perRequest).toFixed(3)} | ${(floor / r.perRequest).toFixed(3)} | ${Math.round(r.compilerPerRequest)} | ${r.wrongStatus} |`,
      );
    }
    console.log('');
    if (CACHE_SIM) {
      const bareCycles = byName.get('bare')!.cache!.cycles;
      console.log('Simulated caches (per request; estimated cycles = instructions + 10 x L1 misses + 100 x last-level misses):\n');
      console.log('| scenario | L1 instruction misses | L1 data misses | last-level misses | estimated cycles | spread over rounds | ratio to (a) | ratio to its floor |');
      console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
      for (const r of rows) {
        const c = r.cache!;
        const floor = byName.get(r.floor)?.cache?.cycles ?? NaN;
        console.log(
          `| ${r.label} | ${Math.round(c.l1i)} | ${Math.round(c.l1d)} | ${Math.round(c.ll)} | ${Math.round(c.cycles)} | ${(c.spread * 100).toFixed(1)}% | ${(bareCycles / c.cycles).toFixed(3)} | ${(floor / c.cycles).toFixed(3)} |`,
        );
      }
      console.log('');
    }
    if (TOP_FUNCTIONS > 0) {
      for (const r of rows) {
        console.log(`${adapter}, ${r.label}: the ${TOP_FUNCTIONS} costliest functions, instructions per request\n`);
        for (const [fn, count] of r.topFunctions) console.log(`    ${String(Math.round(count)).padStart(8)}  ${fn.slice(0, 140)}`);
        console.log('');
      }
    }
  }
  console.log(`(${Math.round((Date.now() - started) / 1000)} s)`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/instructions-${Date.now()}.json`, JSON.stringify({ header, results: Object.fromEntries(results) }, null, 2));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
