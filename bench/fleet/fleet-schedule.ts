/**
 * When the fleet soak's faults happen, as shares of the run (so a shorter run still has
 * all three): instance `partitioned` cut off from Redis for 15-30 %, instance `delayed`
 * slowed for 40-55 %, and from 65 % a master killed for good. Each fault is recorded
 * as a window (the false-accept rule and the statistics use them) and a note.
 */
import { randomInt } from 'node:crypto';
import type { Faults } from './fleet-faults.js';
import type { FaultWindow } from './fleet-stats.js';

/** What the schedule records; the driver's RunData has these fields. */
export interface FaultLog {
  origin: number;
  faults: FaultWindow[];
  faultNotes: string[];
  /** The failover's end plus a margin for the clients: from here on no 503 is expected. */
  recoveredAt: number;
}

export interface ScheduleOptions {
  faults: Faults;
  log: FaultLog;
  seconds: number;
  partitioned: number;
  delayed: number;
  delayMs: number;
  redisHost: string;
  /** Every instance's index: a failover hits them all. */
  instances: number[];
  /** True once the run is over: the schedule lifts what it started and stops. */
  stopped(): boolean;
}

/** Margin after the cluster is whole again for the clients to find the new master. */
export const SETTLE_MS = 5_000;

export async function runFaultSchedule(options: ScheduleOptions): Promise<void> {
  const { faults, log } = options;
  const at = (share: number) => log.origin + share * options.seconds * 1_000;
  const until = async (time: number) => {
    while (!options.stopped() && Date.now() < time) await new Promise((resolve) => setTimeout(resolve, Math.min(100, time - Date.now())));
    return !options.stopped();
  };
  const seconds = (time: number) => ((time - log.origin) / 1000).toFixed(1);
  const span = (f: FaultWindow) => `from +${seconds(f.start)} s to +${seconds(f.end)} s`;

  if (!(await until(at(0.15)))) return;
  const partition: FaultWindow = { name: `partition of instance ${options.partitioned}`, instances: [options.partitioned], start: Date.now(), end: Infinity };
  await faults.partition(options.partitioned);
  log.faults.push(partition);
  await until(at(0.3));
  await faults.heal(options.partitioned);
  partition.end = Date.now();
  log.faultNotes.push(`instance ${options.partitioned} partitioned from Redis (blackhole route to ${options.redisHost}) ${span(partition)}`);

  if (!(await until(at(0.4)))) return;
  const delay: FaultWindow = { name: `delay on instance ${options.delayed}`, instances: [options.delayed], start: Date.now(), end: Infinity };
  faults.delay(true);
  log.faults.push(delay);
  await until(at(0.55));
  faults.delay(false);
  delay.end = Date.now();
  log.faultNotes.push(`instance ${options.delayed}: +${options.delayMs} ms each way to Redis and PostgreSQL ${span(delay)}`);

  if (!(await until(at(0.65)))) return;
  const failover: FaultWindow = { name: 'master failover', instances: options.instances, start: Date.now(), end: Infinity };
  log.faults.push(failover);
  const port = await faults.killMasterOf(randomInt(16_384));
  await faults.waitFailover(port);
  failover.end = Date.now();
  log.recoveredAt = failover.end + SETTLE_MS;
  log.faultNotes.push(
    `SIGKILL of master ${port} at +${seconds(failover.start)} s, left dead; replica promoted and ` +
      `cluster_state:ok after ${((failover.end - failover.start) / 1000).toFixed(2)} s`,
  );
}
