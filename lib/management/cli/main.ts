#!/usr/bin/env node
// The `nestjs-api-auth` command. Loaded only when run, never by the library entries.
import 'reflect-metadata';
import { CREATE_KEY_USAGE, runCreateKeyCommand } from './create-key.command.js';
import { MIGRATE_REDIS_LAYOUT_USAGE, runMigrateRedisLayoutCommand } from './migrate-redis-layout.command.js';

const USAGE = `Usage: nestjs-api-auth <command> [options]

Commands:
  create-key             issue an API key (e.g. the first admin key) through the app's own module
  migrate-redis-layout   copy a RedisBackend layout-2 store into layout 3 (Redis Cluster)
  help                   show this help ("nestjs-api-auth <command> --help" for its options)

${CREATE_KEY_USAGE}

${MIGRATE_REDIS_LAYOUT_USAGE}`;

const [command, ...args] = process.argv.slice(2);
const io = {
  stdout: (text: string) => void process.stdout.write(text),
  stderr: (text: string) => void process.stderr.write(text),
  cwd: process.cwd(),
};

let code: number;
if (command === 'create-key') {
  code = await runCreateKeyCommand(args, io);
} else if (command === 'migrate-redis-layout') {
  code = await runMigrateRedisLayoutCommand(args, io);
} else if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
  // Help asked for is an answer, on stdout; help after a mistake goes to stderr.
  io.stdout(`${USAGE}\n`);
  code = 0;
} else {
  io.stderr(`Unknown command "${command}".\n\n${USAGE}\n`);
  code = 2;
}
// The user's module may leave handles open (an ORM pool nobody closes, a Redis client):
// a one-shot command must still end, so that `KEY=$(nestjs-api-auth create-key ...)` returns.
process.exit(code);
