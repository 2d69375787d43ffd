#!/usr/bin/env node
// The `nestjs-api-auth` command. Loaded only when run, never by the library entries.
import 'reflect-metadata';
import { CREATE_KEY_USAGE, runCreateKeyCommand } from './create-key.command.js';

const [command, ...args] = process.argv.slice(2);
const io = {
  stdout: (text: string) => void process.stdout.write(text),
  stderr: (text: string) => void process.stderr.write(text),
  cwd: process.cwd(),
};

if (command === 'create-key') {
  process.exitCode = await runCreateKeyCommand(args, io);
} else {
  io.stderr(`${command ? `Unknown command "${command}".\n\n` : ''}${CREATE_KEY_USAGE}\n`);
  process.exitCode = command ? 2 : 0;
}
