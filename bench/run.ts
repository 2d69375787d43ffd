/**
 * `npm run bench`: drives the benchmark app (bench/server.ts, a separate process)
 * with autocannon, route by route, interleaved over several rounds, on Express and
 * Fastify, and prints requests/s, latency and each route's ratio to the bare route,
 * plus how many primary-store and Redis calls each scenario caused.
 *
 * Environment: BENCH_DURATION (s per run, default 4), BENCH_ROUNDS (default 3),
 * BENCH_CONNECTIONS (default 32), BENCH_ADAPTERS (default "express,fastify").
 */
import autocannon from 'autocannon';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { KeyFormat } from 'nestjs-api-auth';
import { PREFIX } from './scenarios.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ADAPTERS = (process.env.BENCH_ADAPTERS ?? 'express,fastify').split(',');

interface Ready {
  type: 'ready';
  port: number;
  keys: Record<string, string>;
  labels: Record<string, string>;
}

interface Case {
  name: string;
  label: string;
  route: string;
  /** Keys sent in turn, one per request; empty for no key. */
  keys: string[];
  expect: 200 | 401;
  /** Primary-store counter (route name in the server's stats) to report. */
  counter?: string;
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  wrongStatus: number;
  primaryReads: number;
  redisCalls: number;
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

function request(server: ChildProcess, type: string, extra: Record<string, unknown> = {}): Promise<any> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`bench server exited (code ${code}, signal ${signal})`));
    const onMessage = (message: any) => {
      if (message?.type === type) {
        server.off('message', onMessage);
        server.off('exit', onExit);
        resolve(message);
      }
    };
    server.on('message', onMessage);
    server.once('exit', onExit);
    server.send({ type, ...extra });
  });
}

function primaryReads(stats: Record<string, Record<string, number>>, counter?: string): number {
  if (!counter) return 0;
  const c = stats[counter] ?? {};
  return (c.getByHash ?? 0) + (c.getById ?? 0) + (c.peekByHash ?? 0);
}

async function runCase(server: ChildProcess, port: number, c: Case, duration: number): Promise<Sample> {
  const before = await request(server, 'stats');
  const redisBefore = await redisCommandCount();
  let i = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/${c.route}`,
    connections: CONNECTIONS,
    duration,
    requests: [
      {
        method: 'GET',
        setupRequest: (req: any) => {
          if (c.keys.length > 0) req.headers = { ...req.headers, 'x-api-key': c.keys[i++ % c.keys.length] };
          return req;
        },
      },
    ],
    expectBody: undefined,
  } as any);
  const after = await request(server, 'stats');
  const redisAfter = await redisCommandCount();
  const wrong =
    c.expect === 200 ? result.non2xx + result.errors : result.errors + (result['2xx'] ?? 0);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    wrongStatus: wrong,
    primaryReads: primaryReads(after.stats, c.counter) - primaryReads(before.stats, c.counter),
    // Each probe itself costs a few commands (HELLO, CLIENT SETINFO, INFO); subtract them.
    redisCalls: redisBefore === null || redisAfter === null ? NaN : Math.max(0, redisAfter - redisBefore - 4),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function benchAdapter(adapter: string) {
  const debug = (...a: unknown[]) => process.env.BENCH_DEBUG && console.error("[bench]", ...a);
  const server = fork(new URL('./server.js', import.meta.url), [adapter], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready: Ready = await new Promise((resolve, reject) => {
    server.once('message', resolve);
    server.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });
  const { port, keys, labels } = ready;
  debug("ready", port);
  const format = new KeyFormat(PREFIX);
  const floodRoute = keys.cached ? 'cached' : 'memory';
  const unknownKeys = Array.from({ length: 100 }, () => format.generate());
  const malformed = Array.from({ length: 100 }, () => {
    const k = format.generate();
    // Last character changed: the checksum no longer matches.
    return k.slice(0, -1) + (k.endsWith('A') ? 'B' : 'A');
  });

  const cases: Case[] = [
    // The bare route gets a key header too, so every request has the same size.
    { name: 'bare', label: '(a) no guard', route: 'bare', keys: [keys.memory!], expect: 200 },
    { name: 'passport', label: '(b) Passport + passport-headerapikey, Map', route: 'passport', keys: [keys.passport!], expect: 200 },
  ];
  for (const route of Object.keys(labels)) {
    cases.push({ name: route, label: labels[route]!, route, keys: [keys[route]!], expect: 200, counter: route });
  }
  cases.push(
    { name: 'flood-malformed', label: `malformed-key flood (${floodRoute})`, route: floodRoute, keys: malformed, expect: 401, counter: floodRoute },
    { name: 'flood-unknown', label: `unknown-key flood, 100 keys (${floodRoute})`, route: floodRoute, keys: unknownKeys, expect: 401, counter: floodRoute },
  );

  // Warm-up: JIT, connection pools, caches.
  for (const c of cases) {
    debug("warm", c.name);
    await runCase(server, port, c, 1);
  }

  const samples = new Map<string, Sample[]>(cases.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order each round so no route always runs first or last.
    const ordered = cases.map((_, i) => cases[(i + round) % cases.length]!);
    for (const c of ordered) samples.get(c.name)!.push(await runCase(server, port, c, DURATION));
  }
  // Server CPU per request, in-process (light-my-request through the whole Nest
  // pipeline): no sockets and no load generator sharing the two cores.
  const cpuCases: Array<[string, string, string | undefined, number]> = [
    ['(a) no guard', 'bare', keys.memory, 5_000],
    ['no-op guard (Nest\'s own guard cost)', 'noop-guard', keys.memory, 5_000],
    ['(b) Passport', 'passport', keys.passport, 5_000],
    ['(c) memory', 'memory', keys.memory, 5_000],
  ];
  if (keys.cached) cpuCases.push(['(d) cached, warm', 'cached', keys.cached, 5_000]);
  if (keys.redis) cpuCases.push(['(e) Redis primary', 'redis', keys.redis, 2_000]);
  if (keys.postgres) cpuCases.push(['(f) PostgreSQL', 'postgres', keys.postgres, 1_000]);
  cpuCases.push(['malformed key', floodRoute, malformed[0], 5_000], ['unknown key (negative cache)', floodRoute, unknownKeys[0], 5_000]);
  const cpuSamples = new Map<string, number[]>(cpuCases.map(([label]) => [label, []]));
  for (let round = 0; round < 5; round++) {
    for (const [label, route, key, n] of cpuCases) {
      const { micros } = await request(server, 'cpu', { route, key, n: round === 0 ? Math.ceil(n / 5) : n });
      if (round > 0) cpuSamples.get(label)!.push(micros);
    }
  }
  const cpuBare = median(cpuSamples.get('(a) no guard')!);
  const cpu = cpuCases.map(([label]) => {
    const micros = median(cpuSamples.get(label)!);
    return { scenario: label, micros: +micros.toFixed(1), ratio: +(cpuBare / micros).toFixed(3) };
  });

  await request(server, 'stop').catch(() => undefined);
  server.kill();

  const bare = median(samples.get('bare')!.map((s) => s.rps));
  const rows = cases.map((c) => {
    const s = samples.get(c.name)!;
    const rps = median(s.map((x) => x.rps));
    return {
      scenario: c.label,
      rps: Math.round(rps),
      ratio: +(rps / bare).toFixed(3),
      p50: median(s.map((x) => x.p50)),
      p99: median(s.map((x) => x.p99)),
      wrongStatus: s.reduce((a, x) => a + x.wrongStatus, 0),
      primaryReads: s.reduce((a, x) => a + x.primaryReads, 0),
      redisCalls: s.reduce((a, x) => a + x.redisCalls, 0),
      requests: Math.round(s.reduce((a, x) => a + x.rps * DURATION, 0)),
    };
  });
  return { rows, cpu };
}

async function main() {
  const header = `Node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${CONNECTIONS} connections, ${DURATION}s x ${ROUNDS} rounds interleaved`;
  console.log(`nestjs-api-auth benchmark: ${header}\n`);
  const all: Record<string, unknown> = {};
  for (const adapter of ADAPTERS) {
    const { rows, cpu } = await benchAdapter(adapter);
    all[adapter] = { http: rows, cpu };
    console.log(`### ${adapter}\n`);
    console.log('| scenario | req/s | ratio to (a) | p50 ms | p99 ms | primary reads | Redis calls | wrong status |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(
        `| ${r.scenario} | ${r.rps} | ${r.ratio.toFixed(3)} | ${r.p50} | ${r.p99} | ${r.primaryReads} | ${Number.isNaN(r.redisCalls) ? 'n/a' : r.redisCalls} | ${r.wrongStatus} |`,
      );
    }
    console.log('');
    console.log(`Server CPU per request, in-process (${adapter}; medians of 4 interleaved rounds):\n`);
    console.log('| scenario | µs per request | ratio to (a) |');
    console.log('|---|---:|---:|');
    for (const r of cpu) console.log(`| ${r.scenario} | ${r.micros} | ${r.ratio.toFixed(3)} |`);
    console.log('');
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/bench-${Date.now()}.json`, JSON.stringify({ header, results: all }, null, 2));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
