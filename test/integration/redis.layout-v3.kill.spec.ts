import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKey } from 'nestjs-api-auth';
import type { RedisBackend } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { layoutV3Backend, TestClock, visible } from '../fixtures/redis-layout-v3-crash.js';
import { connectRedis, deleteNamespace, REDIS_URL, scanKeys, uniqueNamespace } from '../fixtures/redis.js';

// The crash tests once more with a real process death: the writer runs in a child
// process that stops after step k, and is SIGKILLed there.
const root = fileURLToPath(new URL('../../', import.meta.url));
// Compiled inside the repository, so the writer resolves `redis` from its node_modules.
const outDir = `${root}node_modules/.cache/nestjs-api-auth-tests/v3-writer-${randomBytes(4).toString('hex')}`;
const writer = `${outDir}/test/fixtures/redis-layout-v3-writer.js`;

/** Runs `operation(...args)` in a child process, SIGKILLed once it reports the end of `step`. */
function killedAfter(namespace: string, operation: string, step: number, args: unknown[]): Promise<void> {
  const child = spawn(process.execPath, [writer, JSON.stringify({ url: REDIS_URL, namespace, operation, step, args })], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(`stopped ${operation} ${step}`)) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`the writer exited (${String(code)}) without stopping at ${operation} step ${step}: ${out} ${err}`));
    });
  });
}

describe('RedisBackend layout 3: a writer process SIGKILLed between steps', () => {
  let client: Awaited<ReturnType<typeof connectRedis>>;
  let namespace: string;
  let clock: TestClock;
  let reader: RedisBackend;

  beforeAll(async () => {
    // The writer and what it imports, compiled by TypeScript alone (types are checked by the suite's typecheck).
    await promisify(execFile)(process.execPath, [
      `${root}node_modules/typescript/bin/tsc`,
      '--ignoreConfig',
      `${root}test/fixtures/redis-layout-v3-writer.ts`,
      ...['--outDir', outDir, '--rootDir', root, '--module', 'nodenext', '--moduleResolution', 'nodenext'],
      ...['--target', 'es2022', '--types', 'node', '--skipLibCheck', '--noCheck'],
    ]);
    client = await connectRedis();
  }, 60_000);
  afterAll(async () => {
    await client.close();
    rmSync(outDir, { recursive: true, force: true });
  });
  const fresh = async () => {
    if (namespace) await deleteNamespace(client, namespace);
    namespace = uniqueNamespace('redis-v3-kill');
    clock = new TestClock();
    reader = layoutV3Backend(client, { namespace }, clock);
  };
  afterAll(async () => {
    if (namespace) await deleteNamespace(client, namespace);
  });

  for (const step of [1, 2, 3]) {
    it(`create killed after step ${step}: invisible until committed; a retry succeeds`, async () => {
      await fresh();
      const record = makeApiKeyRecord();
      await killedAfter(namespace, 'create', step, [record]);
      const seen = await visible(reader, record);
      expect(seen.byHash).toEqual([step < 3 ? null : record]);
      expect(seen.listed).toEqual(step < 3 ? [] : [record]);
      expect(await reader.create(record)).toEqual(record);
      expect(await visible(reader, record)).toEqual({ byHash: [record], byId: record, listed: [record], all: [record], count: 1 });
    });
  }

  for (const step of [1, 2, 3]) {
    it(`revoke killed after step ${step}: the key is revoked everywhere or nowhere`, async () => {
      await fresh();
      const record = makeApiKeyRecord();
      await reader.create(record);
      const revokedAt = new Date();
      await killedAfter(namespace, 'update', step, [record.id, { revokedAt, updatedAt: revokedAt }]);
      const expected: ApiKey = step < 3 ? record : { ...record, revokedAt, updatedAt: revokedAt, version: 2 };
      expect(await visible(reader, record)).toEqual({ byHash: [expected], byId: expected, listed: [expected], all: [expected], count: 1 });
    });
  }

  for (const step of [1, 2]) {
    it(`delete killed after step ${step}: ${step < 2 ? 'nothing changed' : 'gone for every reader'}; a retry leaves no key`, async () => {
      await fresh();
      const record = makeApiKeyRecord();
      await reader.create(record);
      await killedAfter(namespace, 'delete', step, [record.id]);
      const seen = await visible(reader, record);
      expect(seen.byHash).toEqual([step < 2 ? record : null]);
      expect(seen.listed).toEqual(step < 2 ? [record] : []);
      await reader.delete(record.id);
      expect(await scanKeys(client, namespace)).toEqual([]);
    });
  }

  for (const step of [1, 2, 3, 4]) {
    it(`replaceHash killed after step ${step}: one record, never stale; the next revoke finishes the move`, async () => {
      await fresh();
      const record = makeApiKeyRecord();
      await reader.create(record);
      const toHash = makeApiKeyRecord().keyHash;
      await killedAfter(namespace, 'replaceHash', step, [record.id, record.keyHash, toHash]);
      const seen = await visible(reader, record, [record.keyHash, toHash]);
      expect(seen.byHash.filter(Boolean).length).toBeGreaterThan(0);
      expect(seen.listed).toHaveLength(1);
      const revokedAt = new Date();
      await reader.update(record.id, { revokedAt, updatedAt: revokedAt });
      expect(await reader.getByHash(record.keyHash)).toBeNull();
      expect((await reader.getByHash(toHash))?.revokedAt).toEqual(revokedAt);
    });
  }
});
