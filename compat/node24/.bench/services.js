/**
 * The real PostgreSQL and Redis a benchmark runs against: a database and a Redis key
 * namespace of the run's own, so runs never collide, removed again at the end.
 * DATABASE_URL and REDIS_URL override the local defaults.
 */
import { MikroORM } from '@mikro-orm/postgresql';
import { randomBytes } from 'node:crypto';
import { ApiKeyEntity, MikroOrmBackend } from 'nestjs-api-auth/mikro-orm';
import { createClient } from 'redis';
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Creates `api_auth_<label>_<random>` and connects to Redis. */
export async function openBenchServices(label) {
    const suffix = randomBytes(4).toString('hex');
    const database = `api_auth_${label}_${suffix}`;
    const namespace = `api-auth-${label}-${suffix}`;
    const url = new URL(DATABASE_URL);
    url.pathname = `/${database}`;
    const admin = await MikroORM.init({ clientUrl: DATABASE_URL, entities: [ApiKeyEntity], debug: false });
    await admin.em.getConnection().execute(`create database "${database}"`);
    // Fails fast when Redis is down, instead of retrying forever; the database goes again.
    const redis = createClient({ url: REDIS_URL, socket: { connectTimeout: 1_000, reconnectStrategy: false } });
    try {
        await redis.connect();
    }
    catch (error) {
        await admin.em.getConnection().execute(`drop database if exists "${database}" with (force)`);
        await admin.close();
        throw error;
    }
    return {
        databaseUrl: url.toString(),
        namespace,
        redis,
        async createSchema() {
            const orm = await MikroORM.init({ clientUrl: url.toString(), entities: [ApiKeyEntity], debug: false });
            await new MikroOrmBackend(orm).ensureSchema();
            await orm.close();
        },
        async close() {
            for await (const keys of redis.scanIterator({ MATCH: `${namespace}*`, COUNT: 1000 })) {
                const list = Array.isArray(keys) ? keys : [keys];
                if (list.length)
                    await redis.del(list);
            }
            await redis.quit();
            await admin.em.getConnection().execute(`drop database if exists "${database}" with (force)`);
            await admin.close();
        },
    };
}
