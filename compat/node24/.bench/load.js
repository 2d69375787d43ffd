/**
 * The load generator behind `npm run bench`: wrk when it is installed (a C program
 * that needs a fraction of a core to saturate a Node server), autocannon otherwise.
 * Both send one `x-api-key` header per request, cycling through the given keys, and
 * report the same numbers.
 */
import autocannon from 'autocannon';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
/** wrk if it runs here (or `BENCH_LOADGEN` says which), else autocannon. */
export function pickLoadGenerator() {
    const wanted = process.env.BENCH_LOADGEN;
    if (wanted === 'autocannon')
        return 'autocannon';
    try {
        execFileSync('wrk', ['--version'], { stdio: 'ignore' });
        return 'wrk';
    }
    catch (error) {
        // wrk --version exits with 1 after printing its banner; only a missing binary is fatal.
        if (error.code !== 'ENOENT')
            return 'wrk';
        if (wanted === 'wrk')
            throw new Error('BENCH_LOADGEN=wrk, but wrk is not installed (apt-get install wrk).');
        return 'autocannon';
    }
}
export function runLoad(generator, options) {
    return generator === 'wrk' ? runWrk(options) : runAutocannon(options);
}
// wrk's Lua hooks: each thread cycles through the keys file; done() prints one JSON line.
const WRK_SCRIPT = `
local keys = {}
local i = 0
function init(args)
  if args[1] then
    for line in io.lines(args[1]) do keys[#keys + 1] = line end
  end
end
function request()
  if #keys == 0 then return wrk.format("GET") end
  i = i % #keys + 1
  return wrk.format("GET", nil, { ["x-api-key"] = keys[i] })
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"p50":%d,"p99":%d,"status":%d,"errors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
`;
async function runWrk(options) {
    const dir = mkdtempSync(join(tmpdir(), 'api-auth-bench-'));
    try {
        const script = join(dir, 'keys.lua');
        writeFileSync(script, WRK_SCRIPT);
        const args = ['-t1', `-c${options.connections}`, `-d${options.durationSeconds}s`, '--timeout', '5s', '-s', script, options.url];
        if (options.keys.length > 0) {
            const keysFile = join(dir, 'keys.txt');
            writeFileSync(keysFile, options.keys.join('\n') + '\n');
            args.push('--', keysFile);
        }
        const [command, argv] = options.cpus === null ? ['wrk', args] : ['taskset', ['-c', options.cpus, 'wrk', ...args]];
        const stdout = await new Promise((resolve, reject) => execFile(command, argv, { maxBuffer: 1 << 20 }, (error, out) => (error ? reject(error) : resolve(out))));
        const line = stdout.split('\n').find((l) => l.startsWith('{"requests"'));
        if (!line)
            throw new Error(`wrk printed no summary:\n${stdout}`);
        const r = JSON.parse(line);
        return {
            requests: r.requests,
            rps: r.requests / (r.durationUs / 1e6),
            p50: r.p50 / 1000,
            p99: r.p99 / 1000,
            non2xx: r.status,
            errors: r.errors,
        };
    }
    finally {
        rmSync(dir, { recursive: true, force: true });
    }
}
async function runAutocannon(options) {
    let i = 0;
    const { keys } = options;
    const result = await autocannon({
        url: options.url,
        connections: options.connections,
        duration: options.durationSeconds,
        requests: [
            {
                method: 'GET',
                setupRequest: (req) => {
                    if (keys.length > 0)
                        req.headers = { ...req.headers, 'x-api-key': keys[i++ % keys.length] };
                    return req;
                },
            },
        ],
    });
    return {
        requests: result.requests.total,
        rps: result.requests.average,
        p50: result.latency.p50,
        p99: result.latency.p99,
        non2xx: result.non2xx,
        errors: result.errors + result.timeouts,
    };
}
