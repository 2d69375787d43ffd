import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend, type ApiKey } from 'nestjs-api-auth';
import { startCachedInstance, type CachedInstance } from '../fixtures/cached-instance.js';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';
import { pollUntil } from '../fixtures/wait-for.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;

const PREFIX = 'ip_';
const LEGACY_PREFIX = 'oldsys_';
const PEPPER = 'invalidation-privacy-pepper-0123456789';

/**
 * An instance of the cached provider over the shared store, with this file's key setup.
 * Its L1 remembers an unknown key far longer than the test waits, so only a message can
 * make it forget one.
 */
function startInstance(namespace: string, primary: MemoryBackend, pepper: string | undefined): Promise<CachedInstance> {
  return startCachedInstance(namespace, primary, {
    extra: { l1: { negativeTtl: 600_000 } },
    service: { prefix: PREFIX, legacyKeyPrefixes: [LEGACY_PREFIX], ...(pepper ? { pepper } : {}) },
  });
}

/** Every form a key hash could take in a message: hex either case, base64, base64url. */
function encodingsOf(keyHash: string): string[] {
  const bytes = Buffer.from(keyHash, 'hex');
  return [keyHash, keyHash.toUpperCase(), bytes.toString('base64'), bytes.toString('base64url')];
}

describe.each([
  ['SHA-256', undefined],
  ['HMAC-SHA256 (pepper)', PEPPER],
])('what the invalidation channel carries, keys stored as %s', (_label, pepper) => {
  const namespace = uniqueNamespace('inv-privacy').slice(0, -1);
  const primary = new MemoryBackend(); // the shared store: its records are what must not leak
  let admin: Client;
  let subscriber: Client;
  let one: CachedInstance;
  let two: CachedInstance;
  /** Every payload published on the channel, as any client allowed to SUBSCRIBE receives it. */
  const payloads: string[] = [];
  /** Every plaintext key the lifecycle handled. */
  const plaintexts: string[] = [];
  /** Every record the store held at some point, deleted ones included. */
  const records = new Map<string, ApiKey>();
  /** Whether each instance accepted the imported key right after the import, though it had remembered it as unknown. */
  const acceptedAfterImport: boolean[] = [];

  async function remember(id: string): Promise<void> {
    const record = await primary.getById(id);
    if (record) records.set(id, record);
  }

  beforeAll(async () => {
    admin = await connectRedis();
    subscriber = await connectRedis();
    one = await startInstance(namespace, primary, pepper);
    two = await startInstance(namespace, primary, pepper);
    await subscriber.subscribe(one.backend.invalidationBus.channel, (payload) => void payloads.push(payload));

    // A full lifecycle, split over the two instances, with both L1s holding what it touches.
    const issued = await Promise.all(
      [one, one, two, two].map((instance, i) => instance.service.issue({ ownerId: `owner-${i % 2}`, name: `key ${i}`, scopes: ['read'] })),
    );
    for (const { key, apiKey } of issued) {
      plaintexts.push(key);
      await remember(apiKey.id);
    }
    const legacyKey = `${LEGACY_PREFIX}${randomBytes(24).toString('base64url')}`;
    plaintexts.push(legacyKey);
    // Asked for before it exists, so both instances remember it as unknown...
    for (const instance of [one, two]) expect((await instance.service.authenticate(legacyKey)).ok).toBe(false);
    // ...then imported: the creation must reach them without naming the hash.
    const imported = await one.service.import({ key: legacyKey }, { ownerId: 'owner-0', name: 'imported' });
    await remember(imported.id);
    for (const instance of [one, two]) {
      // The other instance's negative entry lasts 10 minutes: only the creation's tag can end it.
      const accepted = await pollUntil(async () => (await instance.service.authenticate(legacyKey)).ok, 'the imported key accepted').then(
        () => true,
        () => false,
      );
      acceptedAfterImport.push(accepted);
    }
    for (const key of plaintexts) for (const instance of [one, two]) await instance.service.authenticate(key);
    for (const instance of [one, two]) await instance.service.authenticate(instance.service.format.generate()); // garbage

    const [a, b, c, d] = issued.map((x) => x.apiKey.id) as [string, string, string, string];
    await one.service.update(a, { name: 'renamed', scopes: ['read', 'write'] });
    await two.service.update(b, { expiresAt: new Date(Date.now() + 3_600_000) });
    await two.service.revoke(c);
    const rotated = await one.service.rotate(d, { gracePeriodMs: 60_000 });
    plaintexts.push(rotated.key);
    await remember(rotated.apiKey.id);
    await one.service.rotate(a, { gracePeriodMs: 0 }).then(async (r) => {
      plaintexts.push(r.key);
      await remember(r.apiKey.id);
    });
    await two.service.delete(b);
    await one.service.delete(imported.id);
    await one.backend.invalidate({ ids: [c], hashes: [records.get(c)!.keyHash] });
    await two.backend.invalidateAll();
    for (const id of records.keys()) await remember(id); // the latest state of whatever still exists

    // Published after every write above resolved (each write waits for its publish), so
    // once the subscriber has it, it has everything before it.
    const sentinel = `sentinel-${randomBytes(4).toString('hex')}`;
    await admin.publish(one.backend.invalidationBus.channel, sentinel);
    await pollUntil(() => payloads.includes(sentinel), 'the sentinel');
    payloads.splice(payloads.indexOf(sentinel), 1);
  });

  afterAll(async () => {
    await subscriber?.close();
    await one?.close();
    await two?.close();
    await deleteNamespace(admin, namespace);
    await admin?.close();
  });

  it('saw a message for every write, naming the written keys by id', () => {
    // 4 issues, 1 import, 2 updates, 1 revoke, 2 rotations (a creation and an update
    // each), 2 deletions, 2 manual invalidations.
    expect(payloads.length).toBeGreaterThanOrEqual(16);
    const named = new Set(payloads.flatMap((p) => (JSON.parse(p) as { i?: string[] }).i ?? []));
    for (const id of records.keys()) expect(named, id).toContain(id);
    expect(records.size).toBe(7);
  });

  it('carries no key hash of any record, in any encoding', () => {
    const leaks: string[] = [];
    for (const record of records.values()) {
      for (const form of encodingsOf(record.keyHash)) {
        payloads.forEach((payload, i) => payload.includes(form) && leaks.push(`hash of ${record.name} in message #${i}`));
      }
      // Nor a run of it long enough to matter: any 16 hex characters.
      for (let start = 0; start + 16 <= record.keyHash.length; start += 8) {
        const part = record.keyHash.slice(start, start + 16);
        payloads.forEach((payload, i) => payload.includes(part) && leaks.push(`part of the hash of ${record.name} in message #${i}`));
      }
    }
    expect(leaks).toEqual([]);
  });

  it('carries no plaintext key, nor its secret part', () => {
    const leaks: string[] = [];
    for (const key of plaintexts) {
      const secret = key.startsWith(PREFIX) ? key.slice(PREFIX.length, -6) : key.slice(LEGACY_PREFIX.length);
      for (const needle of [key, secret, secret.slice(4, 20)]) {
        payloads.forEach((payload, i) => payload.includes(needle) && leaks.push(`${needle.slice(0, 6)}… in message #${i}`));
      }
    }
    expect(leaks).toEqual([]);
  });

  it('carries only the version 2 fields: version, origin, ids, tags and "all"', () => {
    const ids = new Set(records.keys());
    for (const payload of payloads) {
      const message = JSON.parse(payload) as Record<string, unknown>;
      expect(message.v).toBe(2);
      expect(Object.keys(message).every((field) => ['v', 'o', 'i', 't', 'a'].includes(field)), payload).toBe(true);
      for (const id of (message.i as string[] | undefined) ?? []) expect(ids.has(id), id).toBe(true);
      for (const tag of (message.t as number[] | undefined) ?? []) expect(Number.isInteger(tag) && tag >= 0 && tag < 4096).toBe(true);
    }
    expect(payloads.some((p) => (JSON.parse(p) as { t?: number[] }).t?.length)).toBe(true);
    expect(payloads.some((p) => (JSON.parse(p) as { a?: boolean }).a === true)).toBe(true);
  });

  it('still does its job: a key imported after both instances remembered it as unknown is accepted by both at once', () => {
    expect(acceptedAfterImport).toEqual([true, true]);
  });
});
