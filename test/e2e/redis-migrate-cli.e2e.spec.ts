import { afterAll, describe, expect, it } from 'vitest';
import { RedisBackend } from 'nestjs-api-auth/redis';
import { makeApiKeyRecord } from 'nestjs-api-auth/testing';
import { runMigrateRedisLayoutCommand } from '../../lib/management/cli/migrate-redis-layout.command.js';
import { connectRedis, deleteNamespace } from '../fixtures/redis.js';
import { cliClient, cliNamespace } from '../fixtures/redis-migrate-cli.module.js';

const MODULE = 'test/fixtures/redis-migrate-cli.module.ts';

async function run(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runMigrateRedisLayoutCommand(args, {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    cwd: process.cwd(),
  });
  return { code, stdout, stderr };
}

describe('nestjs-api-auth migrate-redis-layout', () => {
  afterAll(async () => {
    const client = await connectRedis();
    await deleteNamespace(client, cliNamespace);
    await client.close();
    await cliClient?.close();
  });

  it('copies layout 2 into the app\'s layout 3, prints the report, and a rerun copies nothing', async () => {
    const client = await connectRedis();
    try {
      const v2 = new RedisBackend(client, { namespace: cliNamespace });
      const records = Array.from({ length: 5 }, () => makeApiKeyRecord({ ownerId: 'cli-owner' }));
      for (const r of records) await v2.create(r);
      const first = await run('--module', MODULE, '--export', 'RedisV3AppModule', '--batch-size', '2');
      expect(first.code, first.stderr).toBe(0);
      expect(JSON.parse(first.stdout)).toMatchObject({ cursor: '0', scanned: 5, copied: 5, conflicts: 0 });
      expect(first.stderr).toContain('resume with --cursor');
      const v3 = new RedisBackend(client, { namespace: cliNamespace, layout: 3 });
      for (const r of records) expect(await v3.getByHash(r.keyHash)).toEqual(r);
      const again = await run('--module', MODULE, '--export', 'RedisV3AppModule');
      expect(JSON.parse(again.stdout)).toMatchObject({ scanned: 5, copied: 0, unchanged: 5 });
    } finally {
      await client.close();
    }
  });

  it.each([
    [['--export', 'RedisV3AppModule'], 2, '--module is required'],
    [['--module', MODULE, '--export', 'RedisV3AppModule', '--batch-size', '0'], 2, '--batch-size must be an integer'],
    [['--module', MODULE, '--export', 'RedisV2AppModule'], 1, 'not a RedisBackend with layout 3'],
  ])('rejects %j with exit code %i', async (args, expected, message) => {
    const { code, stdout, stderr } = await run(...args);
    expect(code).toBe(expected);
    expect(stdout).toBe('');
    expect(stderr).toContain(message);
  });
});
