/**
 * One app instance as the fleet driver sees it: a fleet-server.js process started in
 * its network namespace with `ip netns exec`, reached over HTTP on its namespace's
 * address from the root namespace, through the bridge.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** An HTTP answer: status 0 for a transport failure or a timeout. */
export interface Answer {
  status: number;
  body: string;
}

/** Longest wait for one answer; a request still open then counts as a transport failure. */
const REQUEST_TIMEOUT_MS = 10_000;

/** A control call that did not succeed; `status` 0 for no answer. */
export class ControlError extends Error {
  constructor(
    readonly instance: number,
    readonly path: string,
    readonly status: number,
  ) {
    super(`instance ${instance}: ${path} answered ${status || 'no response'}`);
  }
}

export class FleetInstance {
  private readonly agent: Agent;

  private constructor(
    /** 1-based, as in the namespace's name. */
    readonly index: number,
    readonly address: string,
    readonly port: number,
    private readonly child: ChildProcess,
    connections: number,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: connections });
  }

  /** Starts the instance in namespace `namespace` and resolves once it listens. */
  static async start(options: {
    index: number;
    namespace: string;
    address: string;
    port: number;
    connections: number;
    env: Record<string, string>;
  }): Promise<FleetInstance> {
    const server = fileURLToPath(new URL('./fleet-server.js', import.meta.url));
    const child = spawn('ip', ['netns', 'exec', options.namespace, process.execPath, server], {
      env: { ...process.env, ...options.env, FLEET_INDEX: String(options.index), FLEET_LISTEN: options.address, FLEET_PORT: String(options.port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        if (line.trim() === 'ready') resolve();
      });
      child.once('exit', (code) => reject(new Error(`instance ${options.index} exited with ${code} before it was ready`)));
      setTimeout(() => reject(new Error(`instance ${options.index} not ready after 120 s`)), 120_000).unref();
    });
    return new FleetInstance(options.index, options.address, options.port, child, options.connections);
  }

  /** Sends one request; never rejects. */
  call(method: 'GET' | 'POST', path: string, options: { body?: unknown; apiKey?: string } = {}): Promise<Answer> {
    return new Promise((resolve) => {
      const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
      const headers: Record<string, string> = {};
      if (payload !== undefined) headers['content-type'] = 'application/json';
      if (options.apiKey !== undefined) headers['x-api-key'] = options.apiKey;
      const req = request({ host: this.address, port: this.port, method, path, agent: this.agent, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve({ status: 0, body: '' }));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve({ status: 0, body: '' }));
      req.end(payload);
    });
  }

  /** A control call that must succeed: its JSON reply, or a {@link ControlError} with the status. */
  async control<T>(path: string, body?: unknown): Promise<T> {
    const answer = await this.call(body === undefined ? 'GET' : 'POST', `/control/${path}`, { body });
    if (answer.status < 200 || answer.status >= 300) throw new ControlError(this.index, path, answer.status);
    return JSON.parse(answer.body) as T;
  }

  /** Asks the instance to close (it closes its connections), then kills what is left. */
  async stop(): Promise<void> {
    this.agent.destroy();
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
