import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService, KeyHasher, MemoryBackend, type ApiKey, type ApiKeyBackend } from 'nestjs-api-auth';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { resolveApiAuthOptions } from '../../lib/options/resolve-options.js';
import { CountingBackend } from '../fixtures/counting.backend.js';

// Does refusing an unknown, well-formed key take longer when its hash is close to a
// stored one? A lookup by an index cannot tell, but a store that compared hashes
// character by character with an early exit would leak how many leading characters
// match. We cannot pick SHA-256 outputs, but we can pick what is stored: for each
// "near" probe the store holds its hash with only the last hex digit changed (63 of 64
// characters shared), while every "far" probe's hash differs from every stored hash in
// its first character. The guard's answer for both is the same 401; its time must be too.
//
// Noise control: each round times one batch of each group in random order and keeps
// the ratio of the two, so drifts in machine load cancel within the round; the median
// of many ratios must stay near 1. A deliberately leaky store, timed the same way,
// shows the measurement detects a leak well inside the tolerance.

const PREFIX = 'tm_';
const PROBES = 32;
const ROUNDS = 301;
const WARMUP_ROUNDS = 30;
/** Allowed distance of the median near/far ratio from 1. */
const TOLERANCE = 0.15;

const hasher = new KeyHasher();
const lowFirst = /^[0-7]/;

/** A key of this deployment whose hash's first hex digit matches `first`. */
function probe(service: ApiKeyService, first: RegExp): string {
  for (;;) {
    const key = service.format.generate();
    if (first.test(hasher.hash(key))) return key;
  }
}

/** `hash` with its last hex digit changed: shares 63 leading characters. */
function neighbour(hash: string): string {
  const last = hash.at(-1)!;
  return hash.slice(0, -1) + (last === '0' ? '1' : '0');
}

interface Measurement {
  /** Median over rounds of (time of the near batch / time of the far batch). */
  median: number;
  /** Every round's ratio, sorted. */
  ratios: number[];
  /** Median time of one refusal of a far probe, in nanoseconds. */
  farCallNs: number;
}

/** Times `service` refusing the near and the far probes, interleaved round by round. */
async function measure(service: ApiKeyService, near: string[], far: string[]): Promise<Measurement> {
  const timeBatch = async (keys: string[]): Promise<number> => {
    const start = process.hrtime.bigint();
    for (const key of keys) {
      const result = await service.authenticate(key);
      // Every probe must take the rejection path being measured.
      if (result.ok || result.code !== 'invalid_api_key') throw new Error(`probe not refused as unknown: ${result.ok}`);
    }
    return Number(process.hrtime.bigint() - start);
  };
  const ratios: number[] = [];
  const farTimes: number[] = [];
  for (let round = 0; round < WARMUP_ROUNDS + ROUNDS; round++) {
    let nearNs: number;
    let farNs: number;
    if (Math.random() < 0.5) {
      nearNs = await timeBatch(near);
      farNs = await timeBatch(far);
    } else {
      farNs = await timeBatch(far);
      nearNs = await timeBatch(near);
    }
    if (round >= WARMUP_ROUNDS) {
      ratios.push(nearNs / farNs);
      farTimes.push(farNs / far.length);
    }
  }
  ratios.sort((a, b) => a - b);
  farTimes.sort((a, b) => a - b);
  return { median: ratios[Math.floor(ratios.length / 2)]!, ratios, farCallNs: farTimes[Math.floor(farTimes.length / 2)]! };
}

/**
 * A store with the flaw the test is about: before its indexed lookup it compares the
 * requested hash, character by character with an early exit, against the stored hash
 * sharing its first four characters, spending `nsPerChar` per matching character.
 */
class EarlyExitCompareBackend extends CountingBackend {
  private readonly byPrefix = new Map<string, string>();

  constructor(
    inner: ApiKeyBackend,
    stored: Iterable<string>,
    private readonly nsPerChar: number,
  ) {
    super(inner);
    for (const hash of stored) this.byPrefix.set(hash.slice(0, 4), hash);
    // The service looks up through the synchronous peek when the store has one.
    const peek = this.peekByHash;
    if (peek) {
      this.peekByHash = (keyHash) => {
        this.compare(keyHash);
        return peek(keyHash);
      };
    }
  }

  override getByHash(keyHash: string): Promise<ApiKey | null> {
    this.compare(keyHash);
    return super.getByHash(keyHash);
  }

  private compare(keyHash: string): void {
    const candidate = this.byPrefix.get(keyHash.slice(0, 4));
    if (!candidate) return;
    let matched = 0;
    while (matched < candidate.length && candidate[matched] === keyHash[matched]) matched++;
    const until = process.hrtime.bigint() + BigInt(Math.round(matched * this.nsPerChar));
    while (process.hrtime.bigint() < until);
  }
}

describe('timing of the rejection path for unknown well-formed keys', () => {
  let memory: MemoryBackend;
  let near: string[];
  let far: string[];
  const storedHashes: string[] = [];

  beforeAll(async () => {
    memory = new MemoryBackend();
    const scout = new ApiKeyService(resolveApiAuthOptions({ prefix: PREFIX, backend: memory }));
    near = Array.from({ length: PROBES }, () => probe(scout, lowFirst));
    far = Array.from({ length: PROBES }, () => probe(scout, /^[89a-f]/));
    for (const key of near) storedHashes.push(neighbour(hasher.hash(key)));
    // Filler, so the store is not trivially small; all of it starts with 0-7 as well.
    for (let i = 0; i < 5_000; i++) storedHashes.push(((randomBytes(1)[0]! & 7).toString(16) + randomBytes(32).toString('hex')).slice(0, 64));
    for (const keyHash of storedHashes) await memory.create(makeApiKeyRecord({ keyHash }));
  });

  it('the probes are what they claim: 63 shared leading characters, or none', () => {
    const stored = new Set(storedHashes);
    for (const key of near) {
      const hash = hasher.hash(key);
      expect(stored.has(hash)).toBe(false);
      expect(stored.has(neighbour(hash))).toBe(true);
    }
    for (const key of far) {
      const hash = hasher.hash(key);
      expect(storedHashes.some((s) => s[0] === hash[0])).toBe(false);
    }
  });

  it(`does not depend on how much of a stored hash matches (median near/far ratio within ±${TOLERANCE * 100}%)`, async () => {
    const service = new ApiKeyService(resolveApiAuthOptions({ prefix: PREFIX, backend: memory, trackUsage: false }));
    const { median, ratios } = await measure(service, near, far);
    const q = (p: number) => ratios[Math.floor(ratios.length * p)]!.toFixed(3);
    console.log(`[timing] MemoryBackend: median near/far ${median.toFixed(3)} (quartiles ${q(0.25)}-${q(0.75)}, ${ratios.length} rounds of ${PROBES} probes)`);
    expect(Math.abs(median - 1)).toBeLessThan(TOLERANCE);
  });

  it('the same measurement catches a store that leaks 40% of the refusal time through an early-exit compare', async () => {
    // Calibrated on this machine: 63 matching characters cost 40% of one refusal.
    const baseline = new ApiKeyService(resolveApiAuthOptions({ prefix: PREFIX, backend: memory, trackUsage: false }));
    const { farCallNs } = await measure(baseline, near, far);
    const leaky = new EarlyExitCompareBackend(memory, storedHashes, (0.4 * farCallNs) / 63);
    const service = new ApiKeyService(resolveApiAuthOptions({ prefix: PREFIX, backend: leaky, trackUsage: false }));
    const { median } = await measure(service, near, far);
    console.log(
      `[timing] early-exit compare adding ${Math.round(0.4 * farCallNs)} ns to a ${Math.round(farCallNs)} ns refusal: median near/far ${median.toFixed(3)}`,
    );
    expect(median).toBeGreaterThan(1 + TOLERANCE);
  });
});
