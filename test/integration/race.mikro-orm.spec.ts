import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll } from 'vitest';
import { MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { initOrm } from '../fixtures/mikro-orm.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.js';
import { describeRaces, raceService } from '../fixtures/race-suite.js';

// Real PostgreSQL, a database of this file's own, dropped at the end.
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('race');
});
afterAll(async () => {
  await db?.drop();
});

// Two instances, each with its own ORM and connection pool, on one database.
describeRaces('MikroOrmBackend, two ORMs on one database', async () => {
  const orms: MikroORM[] = [await initOrm(db.url), await initOrm(db.url)];
  await new MikroOrmBackend(orms[0]!).ensureSchema();
  return {
    one: raceService(new MikroOrmBackend(orms[0]!)),
    two: raceService(new MikroOrmBackend(orms[1]!)),
    propagationMs: 0,
    close: async () => {
      for (const orm of orms) await orm.close();
    },
  };
}, { rotations: 10, rotationConcurrency: 5 });
