/**
 * `npm run soak`: two app instances, each a Nest app in its own process (one on
 * Express, one on Fastify), share PostgreSQL and Redis through the cached provider
 * (L1 + Redis cache + PostgreSQL, pub/sub invalidation, fleet-wide usage writes).
 * For SOAK_SECONDS this driver sends sustained mixed traffic to both (valid, revoked,
 * expired, rotated-out, malformed and unknown keys) while it keeps issuing, rotating
 * and revoking keys on either instance. At the end it prints requests served, counts
 * by status, false accepts and false rejects (both must be 0), and each instance's
 * memory before and after; it exits non-zero on any false accept or reject.
 *
 * What "must" means, per key, on the driver's clock:
 * - a request must be accepted (200, as that key's record) when it was sent after the
 *   key's issue (or rotate) returned and completed before the key's end: the revoke
 *   being sent, the rotation's grace end, or its expiry;
 * - it must be refused when it was sent after the revoke returned plus the
 *   propagation bound (SOAK_PROPAGATION_MS, default the L1 TTL: what every instance
 *   guarantees even with pub/sub down), after max(grace end, rotate returned +
 *   propagation), or after the expiry; malformed and unknown keys always;
 * - anything in between is a transition, counted but not judged.
 *
 * Environment: SOAK_SECONDS (default 60), SOAK_CONNECTIONS (concurrent requests,
 * default 32), SOAK_PROPAGATION_MS, DATABASE_URL, REDIS_URL.
 */
import { fork } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { Agent, request } from 'node:http';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { KeyFormat } from 'nestjs-api-auth';
import { REDIS_CACHED_L1_TTL_MS } from 'nestjs-api-auth/redis';
import { REDIS_URL, openBenchServices } from './services.js';
import { SOAK_PREFIX } from './soak-protocol.js';
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const CONNECTIONS = Number(process.env.SOAK_CONNECTIONS ?? 32);
const PROPAGATION_MS = Number(process.env.SOAK_PROPAGATION_MS ?? REDIS_CACHED_L1_TTL_MS);
const WARM_UP_MS = 3_000;
const CHURN_EVERY_MS = 100;
const GRACE_MS = 1_500;
/** Keys in each pool of refused keys; the oldest leave the traffic mix. */
const POOL_LIMIT = 400;
const MIX = [
    ['valid', 45],
    ['revoked', 10],
    ['expiring', 10],
    ['rotated-out', 10],
    ['malformed', 10],
    ['unknown', 15],
];
// ---------------------------------------------------------------- instances
class Instance {
    name;
    child;
    port;
    agent;
    seq = 0;
    constructor(name, child, port, agent) {
        this.name = name;
        this.child = child;
        this.port = port;
        this.agent = agent;
    }
    static async start(name, adapter, databaseUrl, namespace) {
        const child = fork(fileURLToPath(new URL('./soak-server.js', import.meta.url)), [], {
            execArgv: ['--expose-gc'],
            env: { ...process.env, SOAK_DATABASE_URL: databaseUrl, SOAK_NAMESPACE: namespace, SOAK_ADAPTER: adapter, REDIS_URL },
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        const port = await new Promise((resolve, reject) => {
            child.once('message', (m) => resolve(m.port));
            child.once('exit', (code) => reject(new Error(`instance ${name} exited with ${code}`)));
        });
        return new Instance(name, child, port, new Agent({ keepAlive: true, maxSockets: CONNECTIONS }));
    }
    call(message) {
        const seq = ++this.seq;
        return new Promise((resolve, reject) => {
            const onMessage = (reply) => {
                if (reply.seq !== seq)
                    return;
                this.child.off('message', onMessage);
                if (reply.type === 'error')
                    reject(new Error(`${this.name}: ${reply.message}`));
                else
                    resolve(reply);
            };
            this.child.on('message', onMessage);
            this.child.send({ ...message, seq });
        });
    }
    async stop() {
        await Promise.race([this.call({ type: 'stop' }).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 10_000))]);
        this.agent.destroy();
        this.child.kill();
    }
}
/** GET /whoami with `key`; the status and the id the instance says it verified. */
function whoami(instance, key) {
    return new Promise((resolve) => {
        const req = request({ host: '127.0.0.1', port: instance.port, path: '/whoami', agent: instance.agent, headers: { 'x-api-key': key } }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk) => (body += chunk));
            res.on('end', () => {
                let id;
                try {
                    id = JSON.parse(body).id;
                }
                catch {
                    id = undefined;
                }
                resolve({ status: res.statusCode ?? 0, id });
            });
        });
        // A transport failure is status 0: never an accept, and a false reject where one was due.
        req.on('error', () => resolve({ status: 0 }));
        req.end();
    });
}
// ---------------------------------------------------------------- bookkeeping
class Tally {
    byStatus = new Map();
    byCategory = new Map();
    falseAccepts = [];
    falseRejects = [];
    /** Requests in a transition window, and how many of them were accepted. */
    transitions = 0;
    transitionAccepts = 0;
    requests = 0;
    count(category, status) {
        this.requests++;
        this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
        const perCategory = this.byCategory.get(category) ?? new Map();
        perCategory.set(status, (perCategory.get(status) ?? 0) + 1);
        this.byCategory.set(category, perCategory);
    }
}
function pick(items) {
    return items.length === 0 ? undefined : items[randomInt(items.length)];
}
function remember(pool, key) {
    pool.push(key);
    if (pool.length > POOL_LIMIT)
        pool.shift();
}
/** Keys the guard must refuse offline: wrong checksum, prefix, length or alphabet. */
function malformed(valid) {
    const base = valid ?? new KeyFormat(SOAK_PREFIX).generate();
    switch (randomInt(5)) {
        case 0: {
            const i = SOAK_PREFIX.length + randomInt(base.length - SOAK_PREFIX.length);
            return base.slice(0, i) + (base[i] === 'a' ? 'b' : 'a') + base.slice(i + 1);
        }
        case 1:
            return `live_${base.slice(SOAK_PREFIX.length)}`;
        case 2:
            return base.slice(0, -1);
        case 3:
            return `${base.slice(0, -2)}-!`;
        default:
            return randomBytes(24).toString('base64url');
    }
}
// ---------------------------------------------------------------- the run
async function main() {
    const services = await openBenchServices('soak');
    const { namespace } = services;
    const url = services.databaseUrl;
    const instances = [];
    let exitCode = 1;
    try {
        await services.createSchema();
        instances.push(await Instance.start('A (express)', 'express', url, namespace));
        instances.push(await Instance.start('B (fastify)', 'fastify', url, namespace));
        const live = [];
        const revoked = [];
        const expiring = [];
        const rotatedOut = [];
        const unknownKeys = Array.from({ length: 100 }, () => new KeyFormat(SOAK_PREFIX).generate());
        const churn = { issued: 0, expiring: 0, revoked: 0, rotated: 0, errors: [] };
        let owner = 0;
        const issue = async (expiresInMs) => {
            const reply = await pick(instances).call({ type: 'issue', owner: owner++ % 50, expiresInMs });
            const end = reply.expiresAt ?? Infinity;
            return { key: reply.key, id: reply.id, validFrom: Date.now(), validUntil: end, refusedFrom: end };
        };
        const revoke = async (target) => {
            target.validUntil = Date.now();
            remember(revoked, target);
            await pick(instances).call({ type: 'revoke', id: target.id });
            target.refusedFrom = Date.now() + PROPAGATION_MS;
        };
        const rotate = async (target) => {
            // The grace period counts from when the replacement is stored, inside the call: it
            // cannot end before the call started plus the grace period.
            target.validUntil = Date.now() + GRACE_MS;
            remember(rotatedOut, target);
            const reply = await pick(instances).call({ type: 'rotate', id: target.id, graceMs: GRACE_MS });
            const returned = Date.now();
            target.validUntil = Math.min(target.validUntil, reply.graceEnd);
            target.refusedFrom = Math.max(reply.graceEnd, returned + PROPAGATION_MS);
            live.push({ key: reply.key, id: reply.id, validFrom: returned, validUntil: Infinity, refusedFrom: Infinity });
        };
        // Every pool populated before the first request.
        for (let i = 0; i < 40; i++)
            live.push(await issue());
        for (let i = 0; i < 10; i++)
            await revoke(live.shift());
        for (let i = 0; i < 10; i++)
            await rotate(live.shift());
        for (let i = 0; i < 10; i++)
            remember(expiring, await issue(200));
        let stopChurn = false;
        const churner = (async () => {
            while (!stopChurn) {
                const started = Date.now();
                try {
                    const roll = randomInt(100);
                    if (live.length < 30 || (roll < 25 && live.length < 300)) {
                        live.push(await issue());
                        churn.issued++;
                    }
                    else if (roll < 45) {
                        remember(expiring, await issue(500 + randomInt(2_500)));
                        churn.expiring++;
                    }
                    else if (roll < 70) {
                        await revoke(live.splice(randomInt(live.length), 1)[0]);
                        churn.revoked++;
                    }
                    else {
                        await rotate(live.splice(randomInt(live.length), 1)[0]);
                        churn.rotated++;
                    }
                }
                catch (error) {
                    churn.errors.push(error.message);
                }
                await new Promise((resolve) => setTimeout(resolve, Math.max(0, CHURN_EVERY_MS - (Date.now() - started))));
            }
        })();
        const pools = { valid: live, revoked, expiring, 'rotated-out': rotatedOut };
        const tally = new Tally();
        let measuring = false;
        let stopTraffic = false;
        const totalWeight = MIX.reduce((sum, [, weight]) => sum + weight, 0);
        const chooseCategory = () => {
            let roll = randomInt(totalWeight);
            for (const [category, weight] of MIX)
                if ((roll -= weight) < 0)
                    return category;
            return 'valid';
        };
        const worker = async () => {
            while (!stopTraffic) {
                const category = chooseCategory();
                const pool = pools[category];
                const tracked = pool ? pick(pool) : undefined;
                let key = tracked?.key;
                if (key === undefined) {
                    if (category === 'malformed')
                        key = malformed(pick(live)?.key);
                    // Half from a fixed set (negative-cache hits), half never seen before (misses).
                    else
                        key = randomInt(2) ? pick(unknownKeys) : new KeyFormat(SOAK_PREFIX).generate();
                }
                const instance = pick(instances);
                const sentAt = Date.now();
                const { status, id } = await whoami(instance, key);
                const doneAt = Date.now();
                if (!measuring)
                    continue;
                tally.count(category, status);
                const mustRefuse = !tracked || sentAt >= tracked.refusedFrom;
                const mustAccept = !!tracked && sentAt >= tracked.validFrom && doneAt < tracked.validUntil;
                const what = `${category} key on ${instance.name}, sent ${tracked ? sentAt - tracked.validFrom : 0} ms after it became valid`;
                if (status === 200 && (mustRefuse || id !== tracked?.id))
                    tally.falseAccepts.push(`${what}: 200 as ${id === tracked?.id ? 'itself' : 'another key'}`);
                else if (mustAccept && status !== 200)
                    tally.falseRejects.push(`${what}: ${status}`);
                else if (!mustAccept && !mustRefuse) {
                    tally.transitions++;
                    if (status === 200)
                        tally.transitionAccepts++;
                }
            }
        };
        console.log(`Soak: ${SECONDS} s, ${CONNECTIONS} concurrent requests over 2 instances (Express + Fastify, one process each), ` +
            `cached provider over PostgreSQL and Redis. Node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}.`);
        const workers = Array.from({ length: CONNECTIONS }, () => worker());
        await new Promise((resolve) => setTimeout(resolve, WARM_UP_MS));
        const before = await Promise.all(instances.map((i) => i.call({ type: 'memory' })));
        measuring = true;
        const started = Date.now();
        await new Promise((resolve) => setTimeout(resolve, SECONDS * 1_000));
        measuring = false;
        const elapsed = (Date.now() - started) / 1_000;
        stopTraffic = true;
        await Promise.all(workers);
        stopChurn = true;
        await churner;
        const after = await Promise.all(instances.map((i) => i.call({ type: 'memory' })));
        const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
        const statuses = [...tally.byStatus.keys()].sort((a, b) => a - b);
        console.log(`\nRequests served: ${tally.requests} in ${elapsed.toFixed(1)} s (${Math.round(tally.requests / elapsed)} req/s)`);
        console.log(`By status: ${statuses.map((s) => `${s === 0 ? 'network error' : s}: ${tally.byStatus.get(s)}`).join(', ')}`);
        console.log('\n| keys | sent | ' + statuses.map((s) => (s === 0 ? 'network error' : String(s))).join(' | ') + ' |');
        console.log('|---|---:|' + statuses.map(() => '---:').join('|') + '|');
        for (const [category] of MIX) {
            const counts = tally.byCategory.get(category) ?? new Map();
            const sent = [...counts.values()].reduce((sum, n) => sum + n, 0);
            console.log(`| ${category} | ${sent} | ${statuses.map((s) => counts.get(s) ?? 0).join(' | ')} |`);
        }
        console.log(`\nKey operations during the run: ${churn.issued} issued, ${churn.expiring} issued to expire in 0.5-3 s, ` +
            `${churn.revoked} revoked, ${churn.rotated} rotated (grace ${GRACE_MS} ms); ${churn.errors.length} failed`);
        console.log(`In a transition window (revoke sent but not yet past returned + ${PROPAGATION_MS} ms, or similar): ` +
            `${tally.transitions} requests, ${tally.transitionAccepts} of them accepted`);
        console.log(`False accepts: ${tally.falseAccepts.length}`);
        for (const line of tally.falseAccepts.slice(0, 10))
            console.log(`  ${line}`);
        console.log(`False rejects of valid keys: ${tally.falseRejects.length}`);
        for (const line of tally.falseRejects.slice(0, 10))
            console.log(`  ${line}`);
        for (const line of churn.errors.slice(0, 10))
            console.log(`  key operation failed: ${line}`);
        console.log('\n| instance | RSS before | RSS after | heap used before | heap used after |');
        console.log('|---|---:|---:|---:|---:|');
        instances.forEach((instance, i) => {
            const b = before[i];
            const a = after[i];
            console.log(`| ${instance.name} | ${mb(b.rss)} | ${mb(a.rss)} | ${mb(b.heapUsed)} | ${mb(a.heapUsed)} |`);
        });
        if (!before.every((m) => m.collected))
            console.log('(heap readings without a forced collection: --expose-gc was not honoured)');
        exitCode = tally.falseAccepts.length + tally.falseRejects.length + churn.errors.length === 0 && tally.requests > 0 ? 0 : 1;
        console.log(exitCode === 0 ? '\nPASS' : '\nFAIL');
    }
    finally {
        for (const instance of instances)
            await instance.stop();
        await services.close();
    }
    process.exit(exitCode);
}
main().catch((error) => {
    console.error(error);
    process.exit(1);
});
