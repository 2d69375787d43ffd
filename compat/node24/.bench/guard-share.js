/**
 * Where the server's CPU goes under load, read from V8's sampling profiler in the
 * server process itself: the share of samples inside `ApiKeyGuard.canActivate` (all
 * the key check's work: format, hash, lookup, verdict, refusal), inside its SHA-256,
 * and inside Nest's guard pipeline around it. Unlike two throughput runs compared
 * with each other, both sides of this ratio come from the same seconds of the same
 * process, so a noisy machine moves them together.
 */
import { Session } from 'node:inspector/promises';
export class GuardProfiler {
    session = new Session();
    async start() {
        this.session.connect();
        await this.session.post('Profiler.enable');
        await this.session.post('Profiler.setSamplingInterval', { interval: 100 });
        await this.session.post('Profiler.start');
    }
    async stop() {
        const { profile } = (await this.session.post('Profiler.stop'));
        this.session.disconnect();
        return share(profile);
    }
}
function share(profile) {
    const parent = new Map();
    const byId = new Map();
    for (const node of profile.nodes) {
        byId.set(node.id, node);
        for (const child of node.children ?? [])
            parent.set(child, node.id);
    }
    const is = (node, name, file) => node.callFrame.functionName === name && node.callFrame.url.endsWith(file);
    // Which of the three each profile node sits under (memoised per node).
    const memo = new Map();
    const under = (id) => {
        const known = memo.get(id);
        if (known)
            return known;
        const node = byId.get(id);
        const up = parent.has(id) ? under(parent.get(id)) : [false, false, false];
        const result = [
            up[0] || is(node, 'canActivate', '/dist/api-key.guard.js'),
            up[1] || is(node, 'hash', '/dist/keys/key-hasher.js'),
            up[2] || is(node, 'canActivateFn', '/router/router-execution-context.js'),
        ];
        memo.set(id, result);
        return result;
    };
    let total = 0;
    let guard = 0;
    let hash = 0;
    let nest = 0;
    for (let i = 0; i < profile.samples.length; i++) {
        const node = byId.get(profile.samples[i]);
        const dt = profile.timeDeltas[i] ?? 0;
        // Idle time is the event loop waiting: not CPU the server spent.
        if (node.callFrame.functionName === '(idle)')
            continue;
        total += dt;
        const [g, h, n] = under(node.id);
        if (g)
            guard += dt;
        if (h)
            hash += dt;
        if (n)
            nest += dt;
    }
    return { samples: profile.samples.length, guard: guard / total, hash: hash / total, nestGuards: nest / total };
}
