/**
 * The benchmark's cases, shared by `npm run bench` (HTTP) and `npm run
 * bench:instructions` (callgrind): each route of bench/server.ts with the keys sent to
 * it, the status expected, and the floor it is divided by.
 */
import { KeyFormat } from 'nestjs-api-auth';
import { PREFIX } from './scenarios.js';

/** What bench/server.ts reports once it listens. */
export interface Ready {
  type: 'ready';
  port: number;
  keys: Record<string, string>;
  /** Routes sent several keys in turn: all of them, `keys`' first. */
  keySets: Record<string, string[]>;
  labels: Record<string, string>;
  /** Whether the server has the floor route for (e), one hash and one Redis GET. */
  redisFloor: boolean;
  /** Whether the server has the floor route for (f), one hash and one `pg` SELECT by key_hash. */
  pgFloor: boolean;
}

/** One row of the table: a route, the keys sent to it, and what it should answer. */
export interface Case {
  name: string;
  label: string;
  route: string;
  /** Keys sent in turn, one per request; empty for no key. */
  keys: string[];
  expect: 200 | 401;
  /** Primary-store counter (route name in the server's stats) to report. */
  counter?: string;
  /** The floor case to divide by, when not the one of its status. */
  floor?: string;
}

/**
 * Every case the server can serve, or only those in `only` plus the bare route and
 * the floors they are divided by.
 */
export function benchCases(ready: Ready, only: ReadonlySet<string> | null): Case[] {
  const { keys, labels } = ready;
  const format = new KeyFormat(PREFIX);
  const floodRoute = keys.cached ? 'cached' : 'memory';
  const unknownKeys = Array.from({ length: 100 }, () => format.generate());
  const malformed = Array.from({ length: 100 }, () => {
    const k = format.generate();
    // Last character changed: the checksum no longer matches.
    return k.slice(0, -1) + (k.endsWith('A') ? 'B' : 'A');
  });

  const cases: Case[] = [
    // The unguarded routes get a key header too, so every request has the same size.
    { name: 'bare', label: '(a) no guard', route: 'bare', keys: [keys.memory!], expect: 200 },
    { name: 'noop', label: "no-op guard (Nest's own cost of any guard)", route: 'noop-guard', keys: [keys.memory!], expect: 200 },
    { name: 'hash-floor', label: 'floor for a 200: a guard doing one SHA-256 of the key header, nothing else', route: 'hash-floor', keys: [keys.memory!], expect: 200 },
    { name: 'noop-deny', label: 'usual refusal: a guard throwing the same 401, as Nest apps do', route: 'noop-deny', keys: [keys.memory!], expect: 401 },
    { name: 'deny-floor', label: "floor for a 401: the same 401 prebuilt, header set, Nest's exception path", route: 'deny-floor', keys: [keys.memory!], expect: 401 },
    { name: 'passport', label: '(b) Passport + passport-headerapikey, Map', route: 'passport', keys: [keys.passport!], expect: 200 },
  ];
  if (ready.redisFloor) {
    // The key of the redis route: the floor GETs its record, as the route does (and does not parse it).
    cases.push({ name: 'redis-floor', label: 'floor for (e): one SHA-256 and one Redis GET of the record, nothing else', route: 'redis-floor', keys: [keys.redis!], expect: 200 });
    // The floor before issue 22, a GET answered nil; only when BENCH_CASES names it.
    cases.push({ name: 'redis-floor-nil', label: 'the floor for (e) before issue 22: a GET of a key that does not exist', route: 'redis-floor-nil', keys: [keys.redis!], expect: 200 });
  }
  if (ready.pgFloor) {
    // The key of the postgres route: the floor reads an existing row, as the route does.
    cases.push({ name: 'pg-floor', label: 'floor for (f): one SHA-256 and one plain pg SELECT by key_hash, nothing else', route: 'pg-floor', keys: [keys.postgres!], expect: 200 });
  }
  for (const route of Object.keys(labels)) {
    const floor =
      route.startsWith('redis') && ready.redisFloor ? 'redis-floor' : route.startsWith('postgres') && ready.pgFloor ? 'pg-floor' : undefined;
    cases.push({ name: route, label: labels[route]!, route, keys: ready.keySets[route] ?? [keys[route]!], expect: 200, counter: route, floor });
  }
  cases.push(
    { name: 'flood-malformed', label: `malformed-key flood (${floodRoute})`, route: floodRoute, keys: malformed, expect: 401, counter: floodRoute },
    { name: 'flood-unknown', label: `unknown-key flood, 100 keys (${floodRoute})`, route: floodRoute, keys: unknownKeys, expect: 401, counter: floodRoute },
  );
  if (keys['memory-rotating'] && keys['memory-peppered']) {
    // The same unknown keys with a pepper, without and with a previous one: one more HMAC each.
    cases.push(
      { name: 'flood-unknown-peppered', label: 'unknown-key flood, 100 keys (memory, pepper)', route: 'memory-peppered', keys: unknownKeys, expect: 401, counter: 'memory-peppered' },
      { name: 'flood-unknown-rotating', label: 'unknown-key flood, 100 keys (memory, pepper and one previous pepper)', route: 'memory-rotating', keys: unknownKeys, expect: 401, counter: 'memory-rotating' },
    );
  }

  return only === null ? cases.filter((c) => c.name !== 'redis-floor-nil') : selectCases(cases, only);
}

/** The case a row is divided by: its own floor, else the one for its status. */
export function floorOf(c: Case): string {
  return c.floor ?? (c.expect === 200 ? 'hash-floor' : 'deny-floor');
}

/** The cases named in `names`, with the bare route and the floor each is divided by. */
function selectCases(cases: Case[], names: ReadonlySet<string>): Case[] {
  const unknown = [...names].filter((name) => !cases.some((c) => c.name === name));
  if (unknown.length) throw new Error(`BENCH_CASES: no case named ${unknown.join(', ')} (cases: ${cases.map((c) => c.name).join(', ')})`);
  const wanted = new Set(['bare', ...names]);
  for (const c of cases) {
    if (wanted.has(c.name)) wanted.add(floorOf(c));
  }
  return cases.filter((c) => wanted.has(c.name));
}
