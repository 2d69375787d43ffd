import type { UsageWriteCoordinator } from '../usage/usage-coordinator.js';

/**
 * Whether this instance purges in the interval that `now` falls in. The fleet's
 * coordinator (the `usageCoordinator` option: `SET NX PX` in Redis) hands each interval,
 * numbered from the epoch, to the first instance that claims it; instances whose timers
 * fire later in the same interval are refused. Numbering intervals, rather than holding
 * one lease for `intervalMs`, keeps two instances' timers from drifting into two turns
 * per interval. The default coordinator says yes to everyone: each process purges.
 */
export async function claimPurgeTurn(coordinator: UsageWriteCoordinator, intervalMs: number, now: number): Promise<boolean> {
  const slot = Math.floor(now / intervalMs);
  // Kept two intervals, so a claim outlives the interval however late in it it was made.
  return (await coordinator.claim(`purge:${intervalMs}:${slot}`, 2 * intervalMs)) === true;
}
