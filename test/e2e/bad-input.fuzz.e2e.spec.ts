import type { INestApplication } from '@nestjs/common';
import fc from 'fast-check';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuthModule, ApiKeyService, MemoryBackend } from 'nestjs-api-auth';
import { ADAPTERS, bootApp } from '../fixtures/app.js';
import { CountingBackend } from '../fixtures/counting.backend.js';

// Random requests through the real HTTP stack and the real guard: no crash, no 5xx,
// every one a 401. FUZZ_HTTP_REQUESTS sets the total over both adapters.
const TOTAL = Number(process.env.FUZZ_HTTP_REQUESTS ?? 100_000);
const PER_ADAPTER = Math.ceil(TOTAL / ADAPTERS.length);
const CONNECTIONS = Number(process.env.FUZZ_HTTP_CONNECTIONS ?? 4);
/** Requests written at once per connection. */
const PIPELINE = Number(process.env.FUZZ_HTTP_PIPELINE ?? 25);
const PREFIX = 'hf_';

type HeaderLine = [name: string, value: string];
interface FuzzRequest {
  path: string;
  headers: HeaderLine[];
}

/**
 * Header values Node's parser lets through (tab, printable ASCII, latin-1 high bytes):
 * control characters are refused with 400 before any framework code, which the
 * bad-input suite covers; here every request must reach the guard.
 */
const latin1Char = fc.oneof(
  { weight: 20, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 3, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
  { weight: 1, arbitrary: fc.constant(0x09) },
).map((code) => String.fromCharCode(code));
const base62Char = fc.constantFrom(...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz');

function values(issued: string, mintUnissued: () => string): fc.Arbitrary<string> {
  const junk = fc.string({ unit: latin1Char, maxLength: 120 });
  // Prefix and base62 of the right length: well-formed but for the checksum (almost surely).
  const keyShaped = fc.string({ unit: base62Char, minLength: 49, maxLength: 49 }).map((rest) => PREFIX + rest);
  // The issued key with one character replaced, removed or added: always refused
  // offline. Whitespace added at either end is not a change (HTTP and the guard trim
  // it), so those few are filtered out.
  const nearMiss = fc
    .tuple(fc.nat(), latin1Char, fc.constantFrom('replace', 'delete', 'insert'))
    .map(([n, c, op]) => {
      const at = n % issued.length;
      if (op === 'delete') return issued.slice(0, at) + issued.slice(at + 1);
      if (op === 'insert') return issued.slice(0, at) + c + issued.slice(at);
      return c === issued[at] ? issued.slice(0, at) + issued.slice(at + 1) : issued.slice(0, at) + c + issued.slice(at + 1);
    })
    .filter((value) => value.trim() !== issued);
  const unissued = fc.constant(null).map(mintUnissued);
  // Up to 4 kB: three of them stay under Node's 16 kB limit for a request head, beyond
  // which Node answers 431 and closes the connection (covered by the bad-input suite).
  const long = fc.tuple(fc.integer({ min: 1_000, max: 4_000 }), latin1Char).map(([n, c]) => c.repeat(n));
  const plain = fc.oneof(
    { weight: 4, arbitrary: junk },
    { weight: 3, arbitrary: nearMiss },
    { weight: 2, arbitrary: keyShaped },
    { weight: 2, arbitrary: unissued },
    { weight: 1, arbitrary: long },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', 'null', 'Bearer', PREFIX) },
  );
  const scheme = fc.constantFrom('Bearer ', 'bearer ', 'BEARER ', 'Bearer', 'Bearer  ', 'Basic ', 'Token ', '');
  return fc.oneof(plain, fc.tuple(scheme, plain).map(([s, v]) => s + v));
}

function requests(issued: string, mintUnissued: () => string): fc.Arbitrary<FuzzRequest> {
  const value = values(issued, mintUnissued);
  // Different spellings of one name become separate header lines: duplicates on the wire.
  const name = fc.constantFrom('X-API-Key', 'x-api-key', 'X-Api-Key', 'Authorization', 'authorization', 'X-Other', 'Cookie');
  return fc.record({
    path: fc.constantFrom('/t/me', '/t/write', '/t/scope-of', '/t/me?api_key=x', '/t/any'),
    headers: fc.uniqueArray(fc.tuple(name, value), { maxLength: 3, selector: ([n]) => n }),
  });
}

interface RawReply {
  status: number;
  body: string;
}

/**
 * One keep-alive connection that pipelines a batch of requests in a single write and
 * reads the replies in order (HTTP/1.1 §9.3.2). Pipelining cuts the per-request
 * syscalls on both sides, which dominate the cost on a small machine. A connection
 * that closes with replies outstanding rejects, naming how many were answered.
 */
class Connection {
  private socket!: Socket;
  private buffer = Buffer.alloc(0);
  private replies: RawReply[] = [];
  private expected = 0;
  private settle: { resolve: (replies: RawReply[]) => void; reject: (error: Error) => void } | null = null;

  constructor(private readonly port: number) {}

  async open(): Promise<void> {
    this.buffer = Buffer.alloc(0);
    this.socket = connect(this.port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      this.parse();
    });
    const fail = (why: string) => {
      const settle = this.settle;
      this.settle = null;
      settle?.reject(new Error(`${why} after ${this.replies.length} of ${this.expected} replies`));
    };
    this.socket.on('error', (error) => fail(error.message));
    this.socket.on('close', () => fail('connection closed'));
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
  }

  send(batch: FuzzRequest[]): Promise<RawReply[]> {
    const wire = batch
      .map((r) => [`GET ${r.path} HTTP/1.1`, 'Host: 127.0.0.1', ...r.headers.map(([n, v]) => `${n}: ${v}`), '', ''].join('\r\n'))
      .join('');
    return new Promise<RawReply[]>((resolve, reject) => {
      this.replies = [];
      this.expected = batch.length;
      this.settle = { resolve, reject };
      this.socket.write(Buffer.from(wire, 'latin1'));
    });
  }

  close(): void {
    this.settle = null;
    this.socket.destroy();
  }

  private parse(): void {
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buffer.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (this.buffer.length < end + 4 + length) return;
      const body = this.buffer.subarray(end + 4, end + 4 + length).toString('utf8');
      this.buffer = this.buffer.subarray(end + 4 + length);
      this.replies.push({ status: Number(head.slice(9, 12)), body });
      if (this.replies.length === this.expected && this.settle) {
        const { resolve } = this.settle;
        this.settle = null;
        resolve(this.replies);
      }
    }
  }
}

describe.each(ADAPTERS)('random requests through the HTTP guard over %s', (adapter) => {
  let app: INestApplication;
  let port: number;
  let backend: CountingBackend;
  let service: ApiKeyService;
  let issued: string;

  beforeAll(async () => {
    backend = new CountingBackend(new MemoryBackend());
    app = await bootApp(adapter, [ApiAuthModule.forRoot({ prefix: PREFIX, backend, trackUsage: false })]);
    await app.listen(0, '127.0.0.1');
    port = (app.getHttpServer().address() as AddressInfo).port;
    service = app.get(ApiKeyService);
    ({ key: issued } = await service.issue({ ownerId: 'fuzz-http', name: 'fuzz', scopes: ['things:read', 'things:write', 'a'] }));
  });
  afterAll(() => app?.close());

  it(`${PER_ADAPTER} random requests: no crash, no 5xx, every one refused with 401`, { timeout: 120_000 }, async () => {
    const seed = Number(process.env.FUZZ_SEED ?? (Date.now() ^ (Math.random() * 2 ** 31)));
    let wellFormedSent = 0;
    const mint = () => {
      wellFormedSent++;
      return service.format.generate();
    };
    const inputs = fc.sample(requests(issued, mint), { numRuns: PER_ADAPTER, seed });
    backend.reset();

    const statuses = new Map<number, number>();
    const codes = new Map<string, number>();
    const unexpected: Array<{ request: FuzzRequest; status: number; body: string }> = [];
    let next = 0;
    const started = process.hrtime.bigint();
    const cpuBefore = process.cpuUsage();
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        const connection = new Connection(port);
        await connection.open();
        try {
          while (next < inputs.length) {
            const batch = inputs.slice(next, (next += PIPELINE));
            const replies = await connection.send(batch).catch((error: Error) => {
              throw new Error(`${error.message}; the batch began with ${JSON.stringify(batch[0]).slice(0, 300)} (seed ${seed})`);
            });
            replies.forEach(({ status, body }, i) => {
              statuses.set(status, (statuses.get(status) ?? 0) + 1);
              let code = 'not-json';
              try {
                code = String(JSON.parse(body).code);
              } catch {
                // counted as not-json
              }
              codes.set(code, (codes.get(code) ?? 0) + 1);
              const ok =
                status === 401 && (code === 'missing_api_key' || code === 'invalid_api_key') && !body.includes(issued);
              if (!ok && unexpected.length < 5) unexpected.push({ request: batch[i]!, status, body: body.slice(0, 200) });
            });
          }
        } finally {
          connection.close();
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = process.cpuUsage(cpuBefore);
    const cpuPerRequest = Math.round((cpu.user + cpu.system) / inputs.length);
    console.log(
      `[fuzz-http] ${adapter}: ${inputs.length} requests in ${seconds.toFixed(1)} s ` +
        `(${Math.round(inputs.length / seconds)} req/s, ${cpuPerRequest} µs CPU per request incl. client, ${CONNECTIONS} connections x ${PIPELINE} pipelined, seed ${seed}); ` +
        `statuses ${JSON.stringify(Object.fromEntries(statuses))}; codes ${JSON.stringify(Object.fromEntries(codes))}; ` +
        `lookups ${backend.lookups} of ${wellFormedSent} well-formed values generated`,
    );

    expect(JSON.stringify(unexpected), `seed ${seed}`).toBe("[]");
    expect(Object.fromEntries(statuses)).toEqual({ 401: inputs.length });
    // Both refusal kinds occur, so the generator reaches both branches of the guard.
    expect(codes.get('missing_api_key')).toBeGreaterThan(0);
    expect(codes.get('invalid_api_key')).toBeGreaterThan(0);
    // Only well-formed values may be looked up; the near misses and junk never are.
    expect(backend.lookups).toBeGreaterThan(0);
    expect(backend.lookups).toBeLessThanOrEqual(wellFormedSent);
    expect(backend.totalCalls).toBe(backend.lookups);

    // Still alive and still letting the right key in.
    const connection = new Connection(port);
    await connection.open();
    const [after] = await connection.send([{ path: '/t/me', headers: [['X-API-Key', issued]] }]);
    connection.close();
    expect(after?.status).toBe(200);
  });
});
