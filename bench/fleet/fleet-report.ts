/**
 * The fleet soak's printed result: one table of what was measured, each must-hold line
 * with its verdict, then the details (answers by kind of key and status, faults, log
 * lines of the instances). `printReport` returns whether every must-hold line held.
 */
import { SETTLE_MS } from './fleet-schedule.js';
import { rateLimitVerdict, revokeBound, summarize, usageWriteStats, type FaultWindow, type KeyTimeline, type RateLimitCounts } from './fleet-stats.js';

export type Category = 'valid' | 'rate-limited' | 'revoked' | 'rotated-out' | 'unknown' | 'malformed';

/** Everything the driver collected. Times are on the driver's clock, ms since the epoch. */
export interface RunData {
  machine: string;
  instances: number;
  seconds: number;
  connections: number;
  l1Ms: number;
  usageIntervalMs: number;
  rateLimit: number;
  /** Start of the measured run. */
  origin: number;
  elapsedMs: number;
  faults: FaultWindow[];
  faultNotes: string[];
  byCategory: Map<Category, Map<number, number>>;
  falseAccepts: string[];
  /** 200s after a revoke or rotation was acknowledged, judged here against its bound. */
  lateAccepts: { tracked: KeyTimeline & { end?: { ackAt: number; writer: number; floor: number } }; sentAt: number; instance: number; where: string; traffic: boolean }[];
  falseRejects: string[];
  unavailable: { at: number; category: Category; instance: number; status: number }[];
  /** Per revoke: sent, acknowledged, and when the last instance first refused it (NaN: never). */
  revokes: { sentAt: number; ackAt: number; refusedAt: number; writer: number }[];
  rateLimited: Map<string, RateLimitCounts>;
  /** Successful `lastUsedAt` writes, per key, as the database logged them. */
  usageWrites: Map<string, number[]>;
  /** Usage writes the instances sent, per key, successful or not. */
  usageAttempts: Map<string, number[]>;
  operations: {
    issued: number;
    rateLimited: number;
    rotated: number;
    revoked: number;
    failed: string[];
    /** Attempts an instance answered 503 (then retried on another): which, where, the fault in force. */
    refused: { operation: string; instance: number; at: number; fault: string }[];
  };
  logs: Record<string, number>[];
  /** Verification latencies in ms, by `<instance>|<fault in force or "none">`. */
  latency: Map<string, number[]>;
  /** From here on no 503 is expected: the failover is over (plus a margin). */
  recoveredAt: number;
  requests: number;
}

const n = (value: number) => value.toLocaleString('en-US');
const ms = (value: number) => (Number.isFinite(value) ? `${Math.round(value)} ms` : 'n/a');
const mark = (ok: boolean) => (ok ? 'holds' : '**FAILS**');

/** Prints the table and the details; true when every must-hold line held. */
export function printReport(data: RunData): boolean {
  const seconds = data.elapsedMs / 1000;
  const rows: [string, string, string][] = [];

  // False accepts: the immediate ones, plus 200s after an acknowledged end past its bound.
  const falseAccepts = [...data.falseAccepts];
  for (const late of data.lateAccepts) {
    const end = late.tracked.end!;
    if (late.sentAt < Math.max(end.floor, revokeBound(end.ackAt, data.l1Ms))) continue;
    const fault = data.faults.find((f) => end.ackAt >= f.start && end.ackAt <= f.end)?.name ?? 'no fault';
    falseAccepts.push(
      `${late.where}: 200 ${Math.round(late.sentAt - end.ackAt)} ms after instance ${end.writer} acknowledged at ` +
        `+${((end.ackAt - data.origin) / 1000).toFixed(2)} s (${fault} at the ack)`,
    );
  }
  rows.push([
    `false accepts (revoked or rotated-out key accepted at or after ack + ${data.l1Ms} ms, the L1 bound, whatever the faults; unknown or malformed key accepted)`,
    n(falseAccepts.length),
    mark(falseAccepts.length === 0) + ', must be 0',
  ]);
  const refused = data.operations.refused;
  const refusedBy = new Map<string, number>();
  for (const r of refused) {
    const where = `${r.operation} on instance ${r.instance} (${r.fault})`;
    refusedBy.set(where, (refusedBy.get(where) ?? 0) + 1);
  }
  rows.push([
    'key operations refused with 503 (the instance could not hold the shared cache back), each retried on another instance',
    refused.length === 0 ? 'none' : `${n(refused.length)}: ${[...refusedBy].map(([k, v]) => `${k} ${n(v)}`).join(', ')}`,
    'expected on an instance cut off from Redis',
  ]);
  rows.push(['valid keys refused (401/403)', n(data.falseRejects.length), mark(data.falseRejects.length === 0) + ', must be 0']);

  const done = data.revokes.filter((r) => Number.isFinite(r.refusedAt));
  const fromSent = summarize(done.map((r) => Math.max(0, r.refusedAt - r.sentAt)));
  const fromAck = summarize(done.map((r) => Math.max(0, r.refusedAt - r.ackAt)));
  const stuck = data.revokes.length - done.length;
  rows.push([
    'revocation propagation, acknowledged revoke sent → refused by every instance',
    `p50 ${ms(fromSent.p50)}, p99 ${ms(fromSent.p99)}, max ${ms(fromSent.max)} (${n(done.length)} revokes)`,
    mark(stuck === 0) + `: ${stuck} not refused everywhere within 20 s`,
  ]);
  rows.push(['  the same from the revoke acknowledged', `p50 ${ms(fromAck.p50)}, p99 ${ms(fromAck.p99)}, max ${ms(fromAck.max)}`, '']);

  const settle = SETTLE_MS;
  const usage = usageWriteStats(data.usageWrites, data.usageIntervalMs, data.origin, 500, data.faults, settle);
  const attempts = usageWriteStats(data.usageAttempts, data.usageIntervalMs, data.origin, 500, data.faults, settle);
  rows.push([
    `\`lastUsedAt\` writes per key per interval (${data.usageIntervalMs / 1000} s) across the fleet, as stored`,
    `mean ${usage.perInterval.toFixed(2)}, max ${usage.maxPerInterval} (${n(usage.writes)} writes, ${n(usage.keys)} keys); ` +
      `${usage.closePairs} pairs closer than the interval, ${usage.closePairsOutsideFaults} of them outside a fault`,
    mark(usage.closePairsOutsideFaults === 0) + ': none outside a fault',
  ]);
  rows.push([
    '  usage writes sent by the instances (the coordinator\'s work)',
    `mean ${attempts.perInterval.toFixed(2)}, max ${attempts.maxPerInterval} per key per interval (${n(attempts.writes)} sent); ` +
      `${attempts.closePairs} pairs closer than the interval, ${attempts.closePairsOutsideFaults} of them outside a fault (+ ${settle / 1000} s)`,
    mark(attempts.closePairsOutsideFaults === 0) + ': none outside a fault',
  ]);

  let exact = 0;
  let below = 0;
  let above = 0;
  let bad = 0;
  let accepted = 0;
  let limitedKeys = 0;
  for (const counts of data.rateLimited.values()) {
    if (counts.accepted + counts.limited + counts.unknown <= counts.limit) continue; // never reached its limit
    limitedKeys++;
    accepted += counts.accepted;
    const verdict = rateLimitVerdict(counts);
    if (!verdict.ok) bad++;
    if (counts.accepted > counts.limit) above++;
    else if (verdict.exact) exact++;
    else below++;
  }
  rows.push([
    `rate-limit exactness (limit ${data.rateLimit} per key, fleet-wide)`,
    `${limitedKeys} keys past their limit: accepted = limit on ${exact}, below it on ${below} (each by at most its 503s), above it on ${above}; ${n(accepted)} accepted in all`,
    mark(bad === 0) + ': never above, below only by 503s',
  ]);

  const failover = data.faults.find((f) => f.name === 'master failover');
  const late503 = data.unavailable.filter((u) => u.at >= data.recoveredAt);
  const byFault = new Map<string, number>();
  for (const u of data.unavailable) {
    const fault = data.faults.find((f) => u.at >= f.start && u.at <= f.end)?.name ?? (u.at >= data.recoveredAt ? 'after recovery' : 'no fault');
    byFault.set(fault, (byFault.get(fault) ?? 0) + 1);
  }
  const last503 = failover ? data.unavailable.filter((u) => u.at >= failover.start).reduce((m, u) => Math.max(m, u.at - failover.start), 0) : 0;
  const rateLimited503 = data.unavailable.filter((u) => u.category === 'rate-limited').length;
  rows.push([
    '503s (and transport failures)',
    `${n(data.unavailable.length)}: ${[...byFault].map(([k, v]) => `${k} ${n(v)}`).join(', ') || 'none'}; ${n(rateLimited503)} of them for rate-limited keys`,
    mark(late503.length === 0) + `: none from failover + ${SETTLE_MS / 1000} s to the end (${late503.length})`,
  ]);
  const over = data.faults.filter((f) => Number.isFinite(f.end)).length;
  const faultsOk = over === 3 && data.faults.length === 3 && Number.isFinite(data.recoveredAt);
  rows.push([
    'faults injected and over (partition, delay, master failover recovered without a restart)',
    `${over} of 3` +
      (failover && Number.isFinite(failover.end)
        ? `; cluster whole ${((failover.end - failover.start) / 1000).toFixed(2)} s after the kill, last 503 ${(last503 / 1000).toFixed(2)} s after it`
        : ''),
    mark(faultsOk),
  ]);
  rows.push(['requests total', `${n(data.requests)} in ${seconds.toFixed(1)} s (${n(Math.round(data.requests / seconds))}/s)`, mark(data.requests > 0)]);
  const ops = data.operations;
  rows.push([
    'key operations during the run',
    `${ops.issued} issued, ${ops.rateLimited} rate-limited issued, ${ops.rotated} rotated, ${ops.revoked} revoked ` +
      `(acknowledged, after ${ops.refused.length} refused attempts); ${ops.failed.length} failed`,
    '',
  ]);

  console.log(`\nFleet soak: ${data.instances} instances, ${data.seconds} s, ${data.connections} concurrent requests. ${data.machine}.\n`);
  console.log('| measure | result | must hold |');
  console.log('|---|---|---|');
  for (const [measure, result, verdict] of rows) console.log(`| ${measure} | ${result} | ${verdict} |`);

  console.log('\nFaults:');
  for (const note of data.faultNotes) console.log(`- ${note}`);
  const statuses = [...new Set([...data.byCategory.values()].flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
  console.log('\n| keys | sent | ' + statuses.map((s) => (s === 0 ? 'no answer' : String(s))).join(' | ') + ' |');
  console.log('|---|---:|' + statuses.map(() => '---:').join('|') + '|');
  for (const [category, counts] of data.byCategory) {
    const sent = [...counts.values()].reduce((sum, v) => sum + v, 0);
    console.log(`| ${category} | ${n(sent)} | ${statuses.map((s) => n(counts.get(s) ?? 0)).join(' | ')} |`);
  }
  for (const line of falseAccepts.slice(0, 10)) console.log(`false accept: ${line}`);
  for (const line of data.falseRejects.slice(0, 10)) console.log(`false reject: ${line}`);
  for (const line of ops.failed.slice(0, 10)) console.log(`key operation failed: ${line}`);
  for (const [id, counts] of data.rateLimited) {
    if (counts.accepted + counts.limited + counts.unknown > counts.limit && !rateLimitVerdict(counts).exact) {
      console.log(`rate-limited key ${id}: ${counts.accepted} accepted, ${counts.limited} limited, ${counts.unknown} unknown (limit ${counts.limit})`);
    }
  }
  console.log('\nVerification latency by instance and fault in force (p50 / p99 / max ms, requests):');
  for (const [phase, values] of [...data.latency].sort(([a], [b]) => a.localeCompare(b))) {
    const [instance, fault] = phase.split('|');
    const t = summarize(values);
    console.log(`- instance ${instance}, ${fault === 'none' ? 'no fault' : fault}: ${t.p50} / ${t.p99} / ${t.max} (${n(t.count)})`);
  }
  console.log('\nLog lines of the instances (counted, not printed during the run):');
  data.logs.forEach((lines, i) => {
    const entries = Object.entries(lines);
    if (entries.length === 0) console.log(`- instance ${i + 1}: none`);
    for (const [line, count] of entries) console.log(`- instance ${i + 1}: ${count} x ${line}`);
  });

  const ok =
    falseAccepts.length === 0 &&
    data.falseRejects.length === 0 &&
    stuck === 0 &&
    usage.closePairsOutsideFaults === 0 &&
    attempts.closePairsOutsideFaults === 0 && bad === 0 && late503.length === 0 && faultsOk && data.requests > 0;
  console.log(ok ? '\nPASS' : '\nFAIL');
  return ok;
}
