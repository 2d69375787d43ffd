import type { INestApplicationContext, LoggerService, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Where a command writes: its answer alone on `stdout` (so `$(...)` captures it), everything else on `stderr`. */
export interface CommandIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Directory `--module` is resolved against. */
  cwd: string;
}

/** Sends Nest's own log lines to stderr, keeping stdout for the command's answer. */
function stderrLogger(io: CommandIO): LoggerService {
  const write = (level: string) => (message: unknown) => io.stderr(`[${level}] ${String(message)}\n`);
  return { log: () => undefined, warn: write('warn'), error: write('error') };
}

/**
 * Loads the app's root module (`exportName` of the compiled file `modulePath`, resolved
 * against `io.cwd`) and starts it without HTTP. Resolves to the context, or to the exit
 * code after saying on stderr why it could not (1 failed, 2 bad usage).
 */
export async function openAppContext(io: CommandIO, modulePath: string, exportName: string): Promise<INestApplicationContext | number> {
  const file = resolve(io.cwd, modulePath);
  let rootModule: Type | undefined;
  try {
    const exports = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    rootModule = exports[exportName] as Type | undefined;
  } catch (error) {
    io.stderr(`Cannot load ${file}: ${(error as Error).message}\n`);
    return 1;
  }
  if (typeof rootModule !== 'function') {
    io.stderr(`${file} has no export named "${exportName}" (use --export to name the module).\n`);
    return 2;
  }
  try {
    return await NestFactory.createApplicationContext(rootModule, { logger: stderrLogger(io), abortOnError: false });
  } catch (error) {
    io.stderr(`The application failed to start: ${(error as Error).message}\n`);
    return 1;
  }
}
