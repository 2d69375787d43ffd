import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from 'nestjs-api-auth';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { connectRedis, deleteNamespace, uniqueNamespace } from '../fixtures/redis.js';

type Client = Awaited<ReturnType<typeof connectRedis>>;

describe('RedisBackend option waitForReplicas, on a Redis with no replica', () => {
  const namespace = uniqueNamespace('redis-wait');
  let client: Client;

  beforeAll(async () => {
    client = await connectRedis();
    // The test relies on this server having no replica (the CI Redis is standalone).
    expect(String(await client.sendCommand(['INFO', 'replication']))).toMatch(/connected_slaves:0/);
  });
  afterAll(async () => {
    await deleteNamespace(client, namespace);
    await client.close();
  });

  it('rejects a management write no replica acknowledged, though the primary applied it; usage writes never wait', async () => {
    const backend = new RedisBackend(client, { namespace, waitForReplicas: { replicas: 1, timeoutMs: 20 } });
    const record = makeApiKeyRecord();
    const error = await backend.create(record).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as Error).message).toContain('ReplicasDidNotAcknowledge');
    expect((error as Error).message).not.toContain(record.keyHash);
    // Applied all the same: the caller learns it may not survive a failover, not that it failed.
    expect((await backend.getByHash(record.keyHash))?.id).toBe(record.id);
    await expect(backend.delete(record.id)).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(await backend.getById(record.id)).toBeNull();

    const plain = new RedisBackend(client, { namespace });
    const used = makeApiKeyRecord();
    await plain.create(used);
    expect(await backend.recordUsage(used.id, new Date(), new Date())).toBe(true);
  });

  it('refuses a malformed option, naming it', () => {
    expect(() => new RedisBackend(client, { waitForReplicas: { replicas: 1 } as never })).toThrow(/needs both "replicas" and "timeoutMs"/);
    expect(() => new RedisBackend(client, { waitForReplicas: { replicas: 0, timeoutMs: 10 } })).toThrow(/waitForReplicas.replicas/);
    expect(() => new RedisBackend(client, { waitForReplicas: { replicas: 1, timeoutMs: 10, replica: 2 } as never })).toThrow(
      /unknown RedisBackend option "waitForReplicas.replica"/,
    );
    expect(() => new RedisBackend(client, { waitForReplicas: null as never })).toThrow(/"waitForReplicas" must be an object/);
    expect(() => new RedisBackend(client, { commandTimeoutMs: 100, waitForReplicas: { replicas: 1, timeoutMs: 100 } })).toThrow(
      /must be below "commandTimeoutMs"/,
    );
    expect(() => new RedisBackend(client, { commandTimeoutMs: 0, waitForReplicas: { replicas: 1, timeoutMs: 100 } })).not.toThrow();
  });
});
