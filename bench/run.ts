/**
 * `npm run bench`: drives the benchmark app (bench/server.ts, a separate process)
 * route by route, interleaved over many short rounds, on Express and Fastify, and
 * prints requests/s, latency, the server's CPU per request and each route's ratio to
 * the bare route, plus how many primary-store and Redis calls each scenario caused.
 *
 * Method, for a small noisy machine: the server is pinned to one CPU and the load
 * generator (wrk when installed, else autocannon) to the others, so they do not
 * compete for a core; each round runs every route once, in a shuffled order, and a
 * route's ratio is taken against the bare route of the same round (paired), then the
 * median over rounds is reported with its range.
 *
 * Environment: BENCH_DURATION (s per run, default 2), BENCH_ROUNDS (default 8),
 * BENCH_CONNECTIONS (default 32), BENCH_ADAPTERS (default "express,fastify"),
 * BENCH_LOADGEN ("wrk" or "autocannon"; default wrk when installed), BENCH_PIN
 * ("0" to not pin processes to CPUs), BENCH_SEED (the route order's seed; printed),
 * BENCH_CASES (a comma-separated subset of the table's cases, by name, to study a few
 * quickly; the bare route and the floors they are divided by always run),
 * BENCH_PROFILE_SECONDS (load per profiled scenario, default 4; 0 skips the profiler),
 * BENCH_STACK ("node24": the server on Node 24 with compat/node24's MikroORM 7; see stack.ts).
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { waitForMessage } from './ipc.js';
import { median } from './median.js';
import { benchCases, floorOf, type Case, type Ready } from './cases.js';
import type { GuardShare } from './guard-share.js';
import { pickLoadGenerator, runLoad, type LoadGenerator } from './load.js';
import { benchStack, type BenchStack } from './stack.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ADAPTERS = (process.env.BENCH_ADAPTERS ?? 'express,fastify').split(',');
const PROFILE_SECONDS = Number(process.env.BENCH_PROFILE_SECONDS ?? 4);
const ONLY = process.env.BENCH_CASES ? new Set(process.env.BENCH_CASES.split(',')) : null;

/** mulberry32: a small seeded PRNG, so a run's route order can be repeated (BENCH_SEED). */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const SEED = Number(process.env.BENCH_SEED ?? Date.now() % 2 ** 31);
const random = seededRandom(SEED);

interface Stats {
  calls: Record<string, Record<string, number>>;
  cpuMicros: number;
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  /** Server CPU (user + system) per completed request, µs. */
  cpuPerRequest: number;
  /** Server CPU time over wall time: near 1 means the server, not the generator, was the limit. */
  busy: number;
  wrongStatus: number;
  primaryReads: number;
  redisCalls: number;
}

/**
 * CPUs for the server and for the load generator: the last CPU for the server, the
 * rest for the generator. Null when pinning is off or impossible (one CPU, no taskset).
 */
function pinning(): { server: string; generator: string } | null {
  const cpus = os.cpus().length;
  if (process.env.BENCH_PIN === '0' || cpus < 2) return null;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
  } catch {
    return null;
  }
  return { server: String(cpus - 1), generator: cpus === 2 ? '0' : `0-${cpus - 2}` };
}

/** Moves every thread of `pid` onto `cpus`. */
function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

async function redisCommandCount(): Promise<number | null> {
  try {
    const { createClient } = await import('redis');
    const client = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', socket: { connectTimeout: 500, reconnectStrategy: false } });
    await client.connect();
    const info = await client.info('commandstats');
    await client.quit();
    let total = 0;
    for (const match of info.matchAll(/calls=(\d+)/g)) total += Number(match[1]);
    // Our own INFO call (and this connection's HELLO/CLIENT SETINFO) is subtracted by the caller.
    return total;
  } catch {
    return null;
  }
}

/** Asks the bench server for `type` (stats, profile...) and waits for its answer. */
function request<T>(server: ChildProcess, type: string): Promise<T> {
  const reply = waitForMessage<T>(server, type);
  server.send({ type });
  return reply;
}

function primaryReads(stats: Stats, counter?: string): number {
  if (!counter) return 0;
  const c = stats.calls[counter] ?? {};
  return (c.getByHash ?? 0) + (c.getById ?? 0) + (c.peekByHash ?? 0);
}

async function runCase(
  server: ChildProcess,
  port: number,
  c: Case,
  duration: number,
  generator: LoadGenerator,
  cpus: string | null,
): Promise<Sample> {
  const before = await request<Stats>(server, 'stats');
  const redisBefore = await redisCommandCount();
  const started = process.hrtime.bigint();
  const result = await runLoad(generator, {
    url: `http://127.0.0.1:${port}/${c.route}`,
    keys: c.keys,
    connections: CONNECTIONS,
    durationSeconds: duration,
    cpus,
  });
  const wallMicros = Number(process.hrtime.bigint() - started) / 1000;
  const after = await request<Stats>(server, 'stats');
  const redisAfter = await redisCommandCount();
  const cpuMicros = after.cpuMicros - before.cpuMicros;
  const wrong = c.expect === 200 ? result.non2xx + result.errors : result.errors + (result.requests - result.non2xx);
  return {
    rps: result.rps,
    p50: result.p50,
    p99: result.p99,
    cpuPerRequest: cpuMicros / Math.max(1, result.requests),
    busy: cpuMicros / wallMicros,
    wrongStatus: wrong,
    primaryReads: primaryReads(after, c.counter) - primaryReads(before, c.counter),
    // Each probe itself costs a few commands (HELLO, CLIENT SETINFO, INFO); subtract them.
    redisCalls: redisBefore === null || redisAfter === null ? NaN : Math.max(0, redisAfter - redisBefore - 4),
  };
}

const range = (values: number[]) => `${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}`;

async function benchAdapter(adapter: string, generator: LoadGenerator, stack: BenchStack) {
  const cpus = pinning();
  const server = fork(new URL('server.js', stack.dir), [adapter], { execPath: stack.execPath, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await waitForMessage<Ready>(server, 'ready');
  if (cpus) {
    pin(server.pid!, cpus.server);
    // autocannon runs in this process; wrk is started under taskset.
    pin(process.pid, cpus.generator);
  }
  const { port } = ready;
  const cases = benchCases(ready, ONLY);

  const generatorCpus = cpus && generator === 'wrk' ? cpus.generator : null;
  // Warm-up: JIT, connection pools, caches.
  for (const c of cases) await runCase(server, port, c, 1, generator, generatorCpus);

  const samples = new Map<string, Sample[]>(cases.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // A fresh order each round. Rotating kept every route behind the same predecessor,
    // so a route always inherited the same neighbour's garbage and warm caches.
    const ordered = shuffle(cases, random);
    for (const c of ordered) samples.get(c.name)!.push(await runCase(server, port, c, DURATION, generator, generatorCpus));
  }

  // In-process attribution: the share of the server's CPU inside the guard, from the
  // sampling profiler, for the scenarios the guard should make near free.
  // BENCH_PROFILE_SECONDS=0 skips it (wrk refuses a zero duration).
  const profiled = PROFILE_SECONDS > 0 ? ['memory', 'cached', 'flood-malformed', 'flood-unknown'] : [];
  const shares: Array<{ scenario: string; share: GuardShare }> = [];
  for (const c of cases.filter((x) => profiled.includes(x.name))) {
    await request(server, 'profile-start');
    await runLoad(generator, { url: `http://127.0.0.1:${port}/${c.route}`, keys: c.keys, connections: CONNECTIONS, durationSeconds: PROFILE_SECONDS, cpus: generatorCpus });
    const { share } = await request<{ share: GuardShare }>(server, 'profile-stop');
    shares.push({ scenario: c.label, share });
  }

  await request(server, 'stop').catch(() => undefined);
  server.kill();

  const bare = samples.get('bare')!;
  const rows = cases.map((c) => {
    const s = samples.get(c.name)!;
    // Paired: each round's run against the bare run of the same round.
    const ratios = s.map((x, i) => x.rps / bare[i]!.rps);
    // And against the floor: the cheapest guard that could answer the same (one hash
    // for a 200; a prebuilt refusal for a 401), same round.
    const calibration = samples.get(floorOf(c))!;
    const calibrated = s.map((x, i) => x.rps / calibration[i]!.rps);
    const cpuRatios = s.map((x, i) => bare[i]!.cpuPerRequest / x.cpuPerRequest);
    return {
      scenario: c.label,
      rps: Math.round(median(s.map((x) => x.rps))),
      ratio: +median(ratios).toFixed(3),
      ratioRange: range(ratios),
      calibrated: +median(calibrated).toFixed(3),
      cpuPerRequest: +median(s.map((x) => x.cpuPerRequest)).toFixed(1),
      cpuRatio: +median(cpuRatios).toFixed(3),
      busy: +median(s.map((x) => x.busy)).toFixed(2),
      p50: +median(s.map((x) => x.p50)).toFixed(2),
      p99: +median(s.map((x) => x.p99)).toFixed(2),
      wrongStatus: s.reduce((a, x) => a + x.wrongStatus, 0),
      primaryReads: s.reduce((a, x) => a + x.primaryReads, 0),
      redisCalls: s.reduce((a, x) => a + x.redisCalls, 0),
      requests: Math.round(s.reduce((a, x) => a + x.rps * DURATION, 0)),
    };
  });
  return { rows, shares, pinned: cpus };
}

async function main() {
  const generator = pickLoadGenerator();
  const cpus = pinning();
  const stack = benchStack();
  const header =
    `server on ${stack.label}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${generator}, ${CONNECTIONS} connections, ` +
    `${DURATION}s x ${ROUNDS} rounds interleaved (order seed ${SEED}), ` +
    (cpus ? `server pinned to CPU ${cpus.server}, load generator to CPU ${cpus.generator}` : 'not pinned');
  console.log(`nestjs-api-auth benchmark: ${header}\n`);
  const all: Record<string, unknown> = {};
  for (const adapter of ADAPTERS) {
    const { rows, shares } = await benchAdapter(adapter, generator, stack);
    all[adapter] = { http: rows, profile: shares };
    console.log(`### ${adapter}\n`);
    console.log('| scenario | req/s | ratio to (a) | range over rounds | ratio to its floor | server µs/req | CPU ratio | server busy | p50 ms | p99 ms | primary reads | Redis calls | wrong status |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(
        `| ${r.scenario} | ${r.rps} | ${r.ratio.toFixed(3)} | ${r.ratioRange} | ${r.calibrated.toFixed(3)} | ${r.cpuPerRequest} | ${r.cpuRatio.toFixed(3)} | ${Math.round(r.busy * 100)}% | ${r.p50} | ${r.p99} | ${r.primaryReads} | ${Number.isNaN(r.redisCalls) ? 'n/a' : r.redisCalls} | ${r.wrongStatus} |`,
      );
    }
    console.log('');
    if (shares.length === 0) continue;
    console.log(`Where the server's CPU goes (${adapter}; V8 sampling profiler in the server, ${PROFILE_SECONDS}s of load each):\n`);
    console.log("| scenario | samples | inside ApiKeyGuard | of which SHA-256 | Nest's guard pipeline, guard included | ratio implied by the guard's CPU | ... with Nest's pipeline |");
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const { scenario, share } of shares) {
      const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
      console.log(
        `| ${scenario} | ${share.samples} | ${pct(share.guard)} | ${pct(share.hash)} | ${pct(share.nestGuards)} | ${(1 - share.guard).toFixed(3)} | ${(1 - share.nestGuards).toFixed(3)} |`,
      );
    }
    console.log('');
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/bench-${Date.now()}.json`, JSON.stringify({ header, results: all }, null, 2));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
