/**
 * A small TCP forwarder for the fleet soak (bench/fleet/soak-fleet.sh), because this
 * kernel has no `netem` and the machine's PostgreSQL listens on loopback only:
 * - in the root namespace it makes PostgreSQL reachable on a bridge address;
 * - inside one instance's namespace it stands in for the Redis nodes and PostgreSQL on
 *   their usual addresses and adds a one-way delay to every chunk in both directions
 *   while it is switched on (SIGUSR1 on, SIGUSR2 off), preserving order.
 *
 * Usage: node tcp-proxy.js [--delay-ms N] LISTEN_HOST:PORT=TARGET_HOST:PORT ...
 * It prints `tcp-proxy: ready` once every listener is up, and exits on SIGTERM.
 */
import { createServer, connect, type Socket } from 'node:net';

interface Route {
  listenHost: string;
  listenPort: number;
  targetHost: string;
  targetPort: number;
}

function parseRoute(text: string): Route {
  const match = /^([^:=]+):(\d+)=([^:=]+):(\d+)$/.exec(text);
  if (!match) throw new Error(`tcp-proxy: bad route "${text}", want LISTEN_HOST:PORT=TARGET_HOST:PORT`);
  return { listenHost: match[1]!, listenPort: Number(match[2]), targetHost: match[3]!, targetPort: Number(match[4]) };
}

const args = process.argv.slice(2);
let delayMs = 0;
const delayAt = args.indexOf('--delay-ms');
if (delayAt >= 0) {
  delayMs = Number(args[delayAt + 1]);
  args.splice(delayAt, 2);
}
const routes = args.map(parseRoute);
let delaying = false;
process.on('SIGUSR1', () => (delaying = true));
process.on('SIGUSR2', () => (delaying = false));
process.on('SIGTERM', () => process.exit(0));

/** Copies `from` to `to`, each chunk held back by the delay in force when it arrived. */
function pipeDelayed(from: Socket, to: Socket): void {
  const queue: { at: number; data: Buffer }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const drain = () => {
    timer = undefined;
    const now = Date.now();
    while (queue.length > 0 && queue[0]!.at <= now) to.write(queue.shift()!.data);
    if (queue.length > 0) timer = setTimeout(drain, queue[0]!.at - now);
  };
  from.on('data', (data: Buffer) => {
    // A chunk never overtakes an earlier one, even when the delay was just switched off.
    const at = Math.max(Date.now() + (delaying ? delayMs : 0), queue.at(-1)?.at ?? 0);
    queue.push({ at, data });
    if (!timer) drain();
  });
  from.on('end', () => {
    const finish = () => (queue.length === 0 ? to.end() : setTimeout(finish, 5));
    finish();
  });
}

let listening = 0;
for (const route of routes) {
  const server = createServer((client) => {
    const upstream = connect(route.targetPort, route.targetHost);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    pipeDelayed(client, upstream);
    pipeDelayed(upstream, client);
  });
  server.listen(route.listenPort, route.listenHost, () => {
    if (++listening === routes.length) console.log('tcp-proxy: ready');
  });
  server.on('error', (error) => {
    console.error(`tcp-proxy: ${route.listenHost}:${route.listenPort}: ${error.message}`);
    process.exit(1);
  });
}
