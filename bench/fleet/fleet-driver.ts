/**
 * The fleet soak's driver (started by soak-fleet.sh, in the root namespace, after the
 * network, the Redis Cluster, the forwarder and the database are up). It starts
 * FLEET_INSTANCES app instances, one per namespace, then for FLEET_SECONDS sends mixed
 * traffic from outside the namespaces (verifications of valid, rate-limited, revoked,
 * rotated-out, unknown and malformed keys) while it issues, rotates and revokes keys on
 * random instances (a 503 retried on another instance), polls every revoked key on every
 * instance until all refuse it, and
 * injects three faults: instance 1 partitioned from Redis, a delay on one instance, and
 * SIGKILL of a master. Then it prints one table (fleet-report.ts) and exits non-zero
 * when a must-hold line fails. The rules: fleet-stats.ts.
 */
import { randomInt } from 'node:crypto';
import os from 'node:os';
import { MikroORM } from '@mikro-orm/postgresql';
import { ApiKeyEntity } from 'nestjs-api-auth/mikro-orm';
import { REDIS_CACHED_L1_TTL_MS } from 'nestjs-api-auth/redis';
import { databaseUrl } from './fleet-database.js';
import { Faults } from './fleet-faults.js';
import { ControlError, FleetInstance } from './fleet-instance.js';
import { malformed, pick, remember, unknownKey } from './fleet-keys.js';
import type { IssueReply, RotateReply } from './fleet-protocol.js';
import { printReport, type Category, type RunData } from './fleet-report.js';
import { runFaultSchedule } from './fleet-schedule.js';
import { judge, type KeyTimeline, type RateLimitCounts } from './fleet-stats.js';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`fleet-driver: ${name} is not set (run it through soak-fleet.sh)`);
  return value;
};

const INSTANCES = Number(env('FLEET_INSTANCES'));
const NET = env('FLEET_NET');
const NS = env('FLEET_NS');
const DELAYED = Number(env('FLEET_DELAYED'));
const REDIS_HOST = env('FLEET_REDIS_HOST');
const REDIS_PORTS = [0, 1, 2, 3, 4, 5].map((i) => Number(env('FLEET_REDIS_BASE')) + i);
const SECONDS = Number(env('FLEET_SECONDS', '120'));
const CONNECTIONS = Number(env('FLEET_CONNECTIONS', '16'));
const MAX_REQUESTS = Number(env('FLEET_MAX_REQUESTS', '5000000'));
const USAGE_INTERVAL_MS = Number(env('FLEET_USAGE_INTERVAL_MS', '5000'));
/** Rate-limited keys: this many requests per window, a window longer than any run (see fleet-stats.ts). */
const RATE_LIMIT = 20;
const RATE_WINDOW_MS = 86_400_000;
const GRACE_MS = 1_500;
const WARM_UP_MS = 3_000;
const CHURN_EVERY_MS = 150;
/** A revoked key still accepted somewhere this long after the revoke: a failure, not a measurement. */
const PROBE_GIVE_UP_MS = 20_000;
/** A key operation refused with 503 is retried on another instance for this long at most. */
const RETRY_FOR_MS = 20_000;
/** Rate-limited keys get traffic while they are among the newest this many. */
const RATE_LIMITED_IN_MIX = 20;

const MIX: Array<[Category, number]> = [
  ['valid', 55],
  ['rate-limited', 15],
  ['revoked', 10],
  ['rotated-out', 8],
  ['unknown', 7],
  ['malformed', 5],
];

interface Tracked extends KeyTimeline {
  key: string;
  limit?: number;
  /** Set when a revoke or rotate was acknowledged: by which instance, when, and the grace end. */
  end?: { ackAt: number; writer: number; floor: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<number> {
  const adminUrl = env('DATABASE_URL');
  const instanceDbUrl = new URL(databaseUrl(env('FLEET_DATABASE'), adminUrl));
  [instanceDbUrl.hostname, instanceDbUrl.port] = env('FLEET_PG').split(':') as [string, string];
  const faults = new Faults({ state: env('FLEET_STATE'), namespacePrefix: NS, redisHost: REDIS_HOST, redisPorts: REDIS_PORTS });

  const startedAt = Date.now();
  const instances = await Promise.all(
    Array.from({ length: INSTANCES }, (_, i) =>
      FleetInstance.start({
        index: i + 1,
        namespace: `${NS}${i + 1}`,
        address: `${NET}.${11 + i}`,
        port: 8080,
        connections: CONNECTIONS,
        env: {
          FLEET_ADAPTER: i % 2 === 0 ? 'express' : 'fastify',
          FLEET_DATABASE_URL: instanceDbUrl.toString(),
          FLEET_REDIS_NODES: REDIS_PORTS.map((port) => `${REDIS_HOST}:${port}`).join(','),
          FLEET_NAMESPACE: 'soak-fleet',
          FLEET_USAGE_INTERVAL_MS: String(USAGE_INTERVAL_MS),
        },
      }),
    ),
  );
  console.log(`soak:fleet: ${INSTANCES} instances ready in ${Date.now() - startedAt} ms`);

  const data: RunData = {
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
    instances: INSTANCES,
    seconds: SECONDS,
    connections: CONNECTIONS,
    l1Ms: REDIS_CACHED_L1_TTL_MS,
    usageIntervalMs: USAGE_INTERVAL_MS,
    rateLimit: RATE_LIMIT,
    origin: 0,
    elapsedMs: 0,
    faults: [],
    faultNotes: [],
    byCategory: new Map(),
    falseAccepts: [],
    lateAccepts: [],
    falseRejects: [],
    unavailable: [],
    revokes: [],
    rateLimited: new Map(),
    usageWrites: new Map(),
    usageAttempts: new Map(),
    latency: new Map(),
    operations: { issued: 0, rateLimited: 0, rotated: 0, revoked: 0, failed: [], refused: [] },
    logs: [],
    recoveredAt: Infinity,
    requests: 0,
  };
  const writer = () => pick(instances)!;
  let measuring = false;
  const inFault = (at: number) => data.faults.find((f) => at >= f.start && at <= f.end)?.name ?? 'none';

  /**
   * Runs a key operation on a random instance; on a 503 (the instance could not hold the
   * shared cache back, e.g. cut off from Redis: nothing was changed) it is counted and
   * retried on another instance, for up to RETRY_FOR_MS. Resolves to the acknowledging
   * instance, the reply and when the acknowledged attempt was sent.
   */
  const withRetry = async <T>(operation: string, path: string, body: unknown): Promise<{ by: FleetInstance; reply: T; sentAt: number }> => {
    const first = Date.now();
    let by = writer();
    for (let attempt = 0; ; attempt++) {
      const sentAt = Date.now();
      try {
        return { by, reply: await by.control<T>(path, body), sentAt };
      } catch (error) {
        if (!(error instanceof ControlError) || error.status !== 503 || Date.now() - first > RETRY_FOR_MS) throw error;
        if (measuring) data.operations.refused.push({ operation, instance: by.index, at: sentAt, fault: inFault(sentAt) });
        const others = instances.filter((i) => i !== by);
        by = pick(others) ?? by;
        // Every instance refused in turn (a failover): wait a little before the next round.
        if (attempt >= instances.length - 1) await sleep(100);
      }
    }
  };

  // ------------------------------------------------------------ key operations
  const live: Tracked[] = [];
  const revoked: Tracked[] = [];
  const rotatedOut: Tracked[] = [];
  const rateLimited: Tracked[] = [];
  const unknownKeys = Array.from({ length: 100 }, () => unknownKey());
  let owner = 0;

  const issue = async (limit?: number): Promise<Tracked> => {
    const { reply } = await withRetry<IssueReply>('issue', 'issue', { owner: owner++ % 50, limit, windowMs: limit === undefined ? undefined : RATE_WINDOW_MS });
    return { key: reply.key, id: reply.id, validFrom: Date.now(), validUntil: Infinity, refusedFrom: Infinity, limit };
  };

  /** Polls a revoked key on every instance until each refuses it; records the propagation. */
  const probe = async (target: Tracked, sentAt: number, ackAt: number) => {
    const record = { sentAt, ackAt, refusedAt: NaN, writer: target.end!.writer };
    data.revokes.push(record);
    const pending = new Set(instances);
    let last = 0;
    while (pending.size > 0 && Date.now() - sentAt < PROBE_GIVE_UP_MS) {
      await Promise.all(
        [...pending].map(async (instance) => {
          const probeSent = Date.now();
          const answer = await instance.call('GET', '/whoami', { apiKey: target.key });
          observe(target, 'revoked', instance, probeSent, Date.now(), answer.status, answer.body, false);
          if (answer.status === 401 || answer.status === 403) {
            pending.delete(instance);
            last = Math.max(last, probeSent);
          }
        }),
      );
      if (pending.size > 0) await sleep(5);
    }
    if (pending.size === 0) record.refusedAt = last;
  };
  const probes: Promise<void>[] = [];

  const revoke = async (target: Tracked) => {
    // From the first attempt on, an accept or a refusal are both right until the bound.
    target.validUntil = Date.now();
    remember(revoked, target);
    const { by, sentAt } = await withRetry('revoke', 'revoke', { id: target.id });
    const ackAt = Date.now();
    target.end = { ackAt, writer: by.index, floor: ackAt };
    probes.push(probe(target, sentAt, ackAt));
  };
  const rotate = async (target: Tracked) => {
    // The grace period counts from when the replacement is stored, inside the call.
    target.validUntil = Date.now() + GRACE_MS;
    remember(rotatedOut, target);
    const { by, reply, sentAt } = await withRetry<RotateReply>('rotate', 'rotate', { id: target.id, graceMs: GRACE_MS });
    target.validUntil = Math.max(target.validUntil, sentAt + GRACE_MS);
    const ackAt = Date.now();
    target.validUntil = Math.min(target.validUntil, reply.graceEnd);
    target.end = { ackAt, writer: by.index, floor: reply.graceEnd };
    live.push({ key: reply.key, id: reply.id, validFrom: ackAt, validUntil: Infinity, refusedFrom: Infinity });
  };

  // ------------------------------------------------------------ judging answers
  function observe(tracked: Tracked | undefined, category: Category, instance: FleetInstance, sentAt: number, doneAt: number, status: number, body: string, traffic: boolean) {
    // Every answer of a rate-limited key counts, warm-up included: the limit spans the run.
    if (tracked?.limit !== undefined) {
      const counts: RateLimitCounts = data.rateLimited.get(tracked.id) ?? { limit: tracked.limit, accepted: 0, limited: 0, unknown: 0 };
      if (status === 200) counts.accepted++;
      else if (status === 429) counts.limited++;
      else if (status === 503 || status === 0) counts.unknown++;
      data.rateLimited.set(tracked.id, counts);
    }
    if (!measuring) return;
    let id: string | undefined;
    if (status === 200) {
      try {
        id = (JSON.parse(body) as { id?: string }).id;
      } catch {
        id = undefined;
      }
    }
    if (traffic) {
      data.requests++;
      const phase = `${instance.index}|${inFault(sentAt)}`;
      const latencies = data.latency.get(phase) ?? [];
      latencies.push(doneAt - sentAt);
      data.latency.set(phase, latencies);
      const counts = data.byCategory.get(category) ?? new Map<number, number>();
      counts.set(status, (counts.get(status) ?? 0) + 1);
      data.byCategory.set(category, counts);
    }
    const where = `${category} key on instance ${instance.index} at +${((sentAt - data.origin) / 1000).toFixed(1)} s (${inFault(sentAt)})`;
    const verdict = judge(tracked, sentAt, doneAt, status, id);
    if (verdict === 'false-accept') data.falseAccepts.push(`${where}: 200 as ${tracked && id === tracked.id ? 'itself' : 'another key'}`);
    else if (verdict === 'false-reject') data.falseRejects.push(`${where}: ${status}`);
    else if (verdict === 'unavailable') data.unavailable.push({ at: sentAt, category, instance: instance.index, status });
    // Whether a 200 after an acknowledged revoke or rotation was too late is decided at
    // the end, once the fault windows (which move the bound) are known.
    if (status === 200 && tracked?.end && sentAt >= tracked.end.ackAt && data.lateAccepts.length < 1_000_000) {
      data.lateAccepts.push({ tracked, sentAt, instance: instance.index, where, traffic });
    }
  }

  // ------------------------------------------------------------ seed, churn, traffic
  for (let i = 0; i < 40; i++) live.push(await issue());
  for (let i = 0; i < 5; i++) rateLimited.push(await issue(RATE_LIMIT));
  for (let i = 0; i < 10; i++) await revoke(live.shift()!);
  for (let i = 0; i < 10; i++) await rotate(live.shift()!);

  let stop = false;
  const churner = (async () => {
    while (!stop) {
      const started = Date.now();
      const roll = randomInt(100);
      const operation = live.length < 30 || (roll < 30 && live.length < 300) ? 'issue' : roll < 50 ? 'rate-limited' : roll < 80 ? 'revoke' : 'rotate';
      try {
        if (operation === 'issue') live.push(await issue());
        else if (operation === 'rate-limited') rateLimited.push(await issue(RATE_LIMIT));
        else if (operation === 'revoke') await revoke(live.splice(randomInt(live.length), 1)[0]!);
        else await rotate(live.splice(randomInt(live.length), 1)[0]!);
        if (measuring) {
          if (operation === 'issue') data.operations.issued++;
          else if (operation === 'rate-limited') data.operations.rateLimited++;
          else if (operation === 'revoke') data.operations.revoked++;
          else data.operations.rotated++;
        }
      } catch (error) {
        if (measuring) data.operations.failed.push(`${operation} at +${((started - data.origin) / 1000).toFixed(1)} s (${inFault(started)}): ${(error as Error).message}`);
      }
      await sleep(Math.max(0, CHURN_EVERY_MS - (Date.now() - started)));
    }
  })();

  const pools: Partial<Record<Category, () => Tracked | undefined>> = {
    valid: () => pick(live),
    'rate-limited': () => pick(rateLimited.slice(-RATE_LIMITED_IN_MIX)),
    revoked: () => pick(revoked),
    'rotated-out': () => pick(rotatedOut),
  };
  const totalWeight = MIX.reduce((sum, [, weight]) => sum + weight, 0);
  const chooseCategory = (): Category => {
    let roll = randomInt(totalWeight);
    for (const [category, weight] of MIX) if ((roll -= weight) < 0) return category;
    return 'valid';
  };
  const worker = async () => {
    while (!stop) {
      const category = chooseCategory();
      const tracked = pools[category]?.();
      let key = tracked?.key;
      if (key === undefined) {
        if (category === 'malformed') key = malformed(pick(live)?.key);
        // Half from a fixed set (negative-cache hits), half never seen before (misses).
        else key = randomInt(2) ? pick(unknownKeys)! : unknownKey();
      }
      const instance = pick(instances)!;
      const sentAt = Date.now();
      const answer = await instance.call('GET', '/whoami', { apiKey: key });
      observe(tracked, tracked ? category : category === 'malformed' ? 'malformed' : 'unknown', instance, sentAt, Date.now(), answer.status, answer.body, true);
      if (data.requests >= MAX_REQUESTS) stop = true;
    }
  };

  console.log(
    `soak:fleet: ${SECONDS} s, ${CONNECTIONS} concurrent requests over ${INSTANCES} instances (Express and Fastify, one process and namespace each), ` +
      `cached provider, rate limiter and usage coordinator on a 3+3 Redis Cluster, PostgreSQL through MikroORM. ${data.machine}.`,
  );
  const workers = Array.from({ length: CONNECTIONS }, () => worker());
  await sleep(WARM_UP_MS);
  data.origin = Date.now();
  measuring = true;
  const faulting = runFaultSchedule({
    faults,
    log: data,
    seconds: SECONDS,
    partitioned: 1,
    delayed: DELAYED,
    delayMs: Number(env('FLEET_DELAY_MS', '40')),
    redisHost: REDIS_HOST,
    instances: instances.map((i) => i.index),
    stopped: () => stop,
  }).catch((error: unknown) => data.faultNotes.push(`fault injection failed: ${(error as Error).message}`));
  while (!stop && Date.now() < data.origin + SECONDS * 1_000) await sleep(100);
  stop = true;
  data.elapsedMs = Date.now() - data.origin;
  await Promise.all(workers);
  await churner;
  await faulting;
  // Probes of the last revokes still count; nothing else does.
  await Promise.all(probes);
  measuring = false;

  data.logs = await Promise.all(instances.map((i) => i.control<Record<string, number>>('logs').catch(() => ({ 'no answer': 1 }))));
  for (const instance of instances) {
    const attempts = await instance.control<[string, number][]>('usage-attempts').catch(() => []);
    for (const [id, at] of attempts) {
      if (at < data.origin || at > data.origin + data.elapsedMs) continue;
      data.usageAttempts.set(id, [...(data.usageAttempts.get(id) ?? []), at]);
    }
  }
  for (const instance of instances) await instance.stop();

  const orm = await MikroORM.init({ clientUrl: databaseUrl(env('FLEET_DATABASE'), adminUrl), entities: [ApiKeyEntity], debug: false });
  const rows = await orm.em
    .getConnection()
    .execute<{ id: string; at: number }[]>('select id::text as id, (extract(epoch from at) * 1000)::float8 as at from fleet_usage_writes order by at');
  await orm.close();
  for (const row of rows) {
    if (row.at < data.origin || row.at > data.origin + data.elapsedMs) continue;
    const list = data.usageWrites.get(row.id) ?? [];
    list.push(row.at);
    data.usageWrites.set(row.id, list);
  }
  return printReport(data) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('soak:fleet:', error);
    process.exit(1);
  },
);
