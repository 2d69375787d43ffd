/** The keys the fleet soak's traffic uses: picking, bounded pools, malformed variants. */
import { randomBytes, randomInt } from 'node:crypto';
import { KeyFormat } from 'nestjs-api-auth';
import { FLEET_PREFIX } from './fleet-protocol.js';

/** Keys in each pool the traffic picks refused keys from; the oldest leave the mix. */
const POOL_LIMIT = 400;

export function pick<T>(items: readonly T[]): T | undefined {
  return items.length === 0 ? undefined : items[randomInt(items.length)];
}

/** Adds `key` to `pool`, dropping the oldest beyond the pool's bound. */
export function remember<T>(pool: T[], key: T): void {
  pool.push(key);
  if (pool.length > POOL_LIMIT) pool.shift();
}

/** A well-formed key no one issued. */
export function unknownKey(): string {
  return new KeyFormat(FLEET_PREFIX).generate();
}

/** Keys the guard must refuse offline: wrong checksum, prefix, length or alphabet. */
export function malformed(valid: string | undefined): string {
  const base = valid ?? unknownKey();
  switch (randomInt(4)) {
    case 0: {
      const i = FLEET_PREFIX.length + randomInt(base.length - FLEET_PREFIX.length);
      return base.slice(0, i) + (base[i] === 'a' ? 'b' : 'a') + base.slice(i + 1);
    }
    case 1:
      return `live_${base.slice(FLEET_PREFIX.length)}`;
    case 2:
      return base.slice(0, -1);
    default:
      return randomBytes(24).toString('base64url');
  }
}
