import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFullStack, type FullStack } from '../fixtures/full-stack.js';
import { CapturingLogger } from '../fixtures/log-capture.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { describeRaces, raceService } from '../fixtures/race-suite.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';
import { pollUntil } from '../fixtures/wait-for.js';

// Real PostgreSQL and Redis: a database and a key prefix of this file's own.
const namespace = uniqueNamespace('race-full');
/** What the Redis caches reported: Redis never goes down here, so nothing may be reported. */
const cacheLog = new CapturingLogger();
let db: TestDatabase;
let admin: Awaited<ReturnType<typeof connectRedis>>;

beforeAll(async () => {
  db = await createTestDatabase('race_full');
  admin = await connectRedis();
});
afterAll(async () => {
  await deleteNamespace(admin, namespace);
  await admin?.close();
  await db?.drop();
});

// Two instances, each with its own ORM, Redis connections, cache client and L1.
describeRaces('the full stack (L1 -> Redis cache -> PostgreSQL, pub/sub), two instances', async () => {
  const stacks: FullStack[] = [];
  for (let i = 0; i < 2; i++) stacks.push(await startFullStack({ databaseUrl: db.url, namespace, logger: cacheLog }));
  return {
    one: raceService(stacks[0]!.backend),
    two: raceService(stacks[1]!.backend),
    // The other instance's L1 may serve the old record until the pub/sub message arrives.
    // The suite waits for a barrier published behind it (Redis delivers a channel's
    // messages in order) instead of allowing a fixed delay; how long delivery takes is
    // measured by `npm run bench:propagation`.
    propagationMs: 0,
    heard: async () => {
      const barrier = `barrier-${randomUUID()}`;
      const seen = new Set<number>();
      const offs = stacks.map((stack, i) => stack.bus.subscribe((m) => void (m.ids?.includes(barrier) && seen.add(i))));
      try {
        await stacks[0]!.bus.publish({ ids: [barrier] });
        await pollUntil(() => seen.size === stacks.length, 'both instances hearing the barrier');
      } finally {
        for (const off of offs) off();
      }
    },
    close: async () => {
      for (const stack of stacks) await stack.close();
    },
  };
}, { rounds: 20, rotations: 10, rotationConcurrency: 5 });

// Concurrent writes to one key (two instances updating and revoking it at once) are not
// a Redis outage: were they taken for one, the writing instance would skip its Redis
// invalidations until the next probe, and the other instance would serve the old entry.
it('never took concurrent writes to one key for a Redis outage', () => {
  expect(cacheLog.lines).toEqual([]);
});
