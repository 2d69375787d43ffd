import { afterEach, describe, expect, it, vi } from 'vitest';

/** Runs the `nestjs-api-auth` command's entry with `args`; resolves to its exit code and output. */
async function runMain(args: string[]) {
  const argv = process.argv;
  process.argv = ['node', 'nestjs-api-auth', ...args];
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (err.push(String(chunk)), true));
  const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
  try {
    vi.resetModules();
    await import('../../lib/management/cli/main.js');
  } finally {
    process.argv = argv;
    vi.restoreAllMocks();
  }
  return { code: exit.mock.calls[0]?.[0], stdout: out.join(''), stderr: err.join('') };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the nestjs-api-auth command', () => {
  it.each([['--help'], ['-h'], ['help'], []])('answers %s with its usage on stdout and exit code 0', async (...args: string[]) => {
    const { code, stdout, stderr } = await runMain(args);
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: nestjs-api-auth <command> [options]');
    expect(stdout).toContain('create-key');
    expect(stderr).toBe('');
  });

  it('refuses an unknown command with its usage on stderr and exit code 2', async () => {
    const { code, stdout, stderr } = await runMain(['frobnicate']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^Unknown command "frobnicate"\.\n\nUsage: nestjs-api-auth <command>/);
  });

  it('ends the process when a command is done, so KEY=$(nestjs-api-auth ...) returns', async () => {
    const { code, stderr } = await runMain(['create-key', '--help']);
    expect(code).toBe(0);
    expect(stderr).toContain('Usage: nestjs-api-auth create-key');
  });
});
