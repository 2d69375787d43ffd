import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ApiKeyService } from 'nestjs-api-auth';
import { runCreateKeyCommand } from '../../lib/management/cli/create-key.command.js';
import { bootApp } from '../fixtures/app.js';
import { AppModule, sharedStore } from '../fixtures/management-cli.module.js';

const MODULE = 'test/fixtures/management-cli.module.ts';

async function run(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCreateKeyCommand(args, {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    cwd: process.cwd(),
  });
  return { code, stdout, stderr };
}

describe('nestjs-api-auth create-key', () => {
  it('issues a key through the app module, prints it once on stdout, and the app accepts it', async () => {
    const before = sharedStore.size;
    const { code, stdout, stderr } = await run('--module', MODULE, '--owner', 'ops', '--name', 'first admin');
    expect(code, stderr).toBe(0);
    const key = stdout.trim();
    expect(stdout).toBe(`${key}\n`);
    expect(key).toMatch(/^cli_[0-9A-Za-z]{49}$/);
    expect(stderr).toContain('for owner "ops"');
    expect(stderr).not.toContain(key);
    expect(sharedStore.size).toBe(before + 1);

    // A separate app on the same store: the key manages keys over HTTP.
    const app = await bootApp('express', [AppModule], { controllers: [] });
    try {
      const record = await app.get(ApiKeyService).verify(key);
      expect(record).toMatchObject({ ownerId: 'ops', name: 'first admin', scopes: ['ops:admin'] });
      const res = await request(app.getHttpServer())
        .post('/api-keys')
        .set('X-API-Key', key)
        .send({ ownerId: 'acme', name: 'acme', scopes: ['reports:read'] })
        .expect(201);
      expect(res.body.apiKey.ownerId).toBe('acme');
    } finally {
      await app.close();
    }
  });

  it('grants the scopes and expiry it is given', async () => {
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const { code, stdout } = await run(
      '--module', MODULE, '--owner', 'ci', '--scope', 'a', '--scope', 'b', '--expires-at', expiresAt,
    );
    expect(code).toBe(0);
    const listed = [];
    for await (const k of sharedStore.listByOwner('ci')) listed.push(k);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ scopes: ['a', 'b'], expiresAt: new Date(expiresAt) });
    expect(listed[0]!.hint.endsWith(stdout.trim().slice(-4))).toBe(true);
  });

  it('refuses an app that keeps keys in memory', async () => {
    const { code, stdout, stderr } = await run('--module', MODULE, '--export', 'MemoryAppModule', '--owner', 'ops');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain('would vanish');
  });

  it.each([
    [['--owner', 'ops'], 2, '--module and --owner are required'],
    [['--module', MODULE], 2, '--module and --owner are required'],
    [['--module', MODULE, '--owner', 'o', '--prefix', 'x_'], 2, "Unknown option '--prefix'"],
    [['--module', MODULE, '--owner', 'o', '--export', 'Nope'], 2, 'no export named "Nope"'],
    [['--module', 'test/fixtures/does-not-exist.js', '--owner', 'o'], 1, 'Cannot load'],
    [['--module', MODULE, '--owner', 'o', '--expires-at', '2001-01-01T00:00:00Z'], 2, 'must be in the future'],
  ])('rejects %j with exit code %i', async (args, expected, message) => {
    const before = sharedStore.size;
    const { code, stdout, stderr } = await run(...args);
    expect(code).toBe(expected);
    expect(stdout).toBe('');
    expect(stderr).toContain(message);
    expect(sharedStore.size).toBe(before);
  });

  it('prints usage on --help', async () => {
    const { code, stderr } = await run('--help');
    expect(code).toBe(0);
    expect(stderr).toContain('Usage: nestjs-api-auth create-key');
  });
});
