import 'reflect-metadata';
import { Controller, Get, Injectable, Module, UnauthorizedException, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { hash } from 'node:crypto';
import { NestFactory } from '@nestjs/core';
import { AuthGuard, PassportModule, PassportStrategy } from '@nestjs/passport';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { HeaderAPIKeyStrategy } from 'passport-headerapikey';
import { ApiAuthModule } from 'nestjs-api-auth';
import { memoryScenario, pepperScenarios, PREFIX, type GuardedScenario } from './scenarios.js';
import { optionalScenarios } from './optional-scenarios.js';
import { GuardProfiler } from './guard-share.js';

const adapterName = process.argv[2] === 'fastify' ? 'fastify' : 'express';

/** The Passport comparison: the usual NestJS answer, a header strategy over a Map. */
const passportKeys = new Map<string, { ownerId: string }>();

@Injectable()
class HeaderApiKeyStrategy extends PassportStrategy(HeaderAPIKeyStrategy, 'headerapikey') {
  constructor() {
    super({ header: 'X-API-Key', prefix: '' }, false);
  }
  validate(apiKey: string) {
    return passportKeys.get(apiKey) ?? false;
  }
}

/** What the guard answers to a malformed key: the calibration routes answer the same. */
const INVALID_KEY_BODY = { statusCode: 401, error: 'Unauthorized', code: 'invalid_api_key', message: 'The API key is not valid.' };

function setInvalidKeyChallenge(context: ExecutionContext): void {
  context.getArgByIndex<{ header(name: string, value: string): void }>(1).header('WWW-Authenticate', 'ApiKey realm="api", error="invalid_api_key"');
}

function denyLikeTheGuard(context: ExecutionContext): boolean {
  setInvalidKeyChallenge(context);
  throw new UnauthorizedException(INVALID_KEY_BODY);
}

/**
 * Floor for a valid key: a guard that hashes the key header once (SHA-256, as the
 * library does without a pepper) and does nothing else. The issue asks for one hash
 * per request, so no guard that meets it can be cheaper than this route.
 */
function hashOnly(context: ExecutionContext): boolean {
  const key = context.getArgByIndex<{ headers: Record<string, string | undefined> }>(0).headers['x-api-key'];
  return typeof key === 'string' && hash('sha256', key, 'hex').length === 64;
}

// Floor for a refusal: the least any guard can do to answer what ours answers to a bad
// key (401, the same body, WWW-Authenticate) through Nest's exception path: the
// exception built once at start-up, handed over in a promise that Node does not track
// as possibly unhandled, no key read. Only the header is set per request.
// (The pre-handled promise repeats the guard's own `rejected` on purpose: a floor must
// not depend on the library it measures.)
const PREBUILT_REFUSAL = new UnauthorizedException(INVALID_KEY_BODY);
function cheapestRefusal(context: ExecutionContext): Promise<never> {
  setInvalidKeyChallenge(context);
  let reject!: (reason: unknown) => void;
  const refused = new Promise<never>((_, settle) => (reject = settle));
  refused.then(undefined, () => undefined);
  reject(PREBUILT_REFUSAL);
  return refused;
}

function buildController(guards: Record<string, CanActivate>) {
  const ok = { ok: true };
  @Controller()
  class BenchController {
    @Get('bare')
    bare() {
      return ok;
    }

    // Calibration: what Nest itself charges for running any guard on a route.
    @Get('noop-guard')
    @UseGuards({ canActivate: () => true })
    noopGuard() {
      return ok;
    }

    // Calibration for the floods: the cheapest way to answer exactly what the guard
    // answers to a malformed key (same status, body and WWW-Authenticate) through Nest's
    // exception path, so a flood's ratio to it is the key check's own cost.
    @Get('noop-deny')
    @UseGuards({ canActivate: denyLikeTheGuard })
    noopDeny() {
      return ok;
    }

    @Get('hash-floor')
    @UseGuards({ canActivate: hashOnly })
    hashFloor() {
      return ok;
    }

    @Get('deny-floor')
    @UseGuards({ canActivate: cheapestRefusal })
    denyFloor() {
      return ok;
    }

    @Get('passport')
    @UseGuards(AuthGuard('headerapikey'))
    passport() {
      return ok;
    }
  }
  // One route per guarded scenario, each with its own guard instance.
  for (const [route, guard] of Object.entries(guards)) {
    const handler = function (this: unknown) {
      return ok;
    };
    Object.defineProperty(BenchController.prototype, route, { value: handler, writable: true, configurable: true });
    const descriptor = Object.getOwnPropertyDescriptor(BenchController.prototype, route)!;
    Get(route)(BenchController.prototype, route, descriptor);
    UseGuards(guard)(BenchController.prototype, route, descriptor);
  }
  return BenchController;
}

async function main() {
  const optional = await optionalScenarios();
  const scenarios: GuardedScenario[] = [await memoryScenario(), ...optional.scenarios];
  if (/peppered|rotating/.test(process.env.BENCH_CASES ?? '')) scenarios.push(...(await pepperScenarios()));
  const guards: Record<string, CanActivate> = Object.fromEntries(scenarios.map((s) => [s.route, s.guard]));
  if (optional.redisFloor) guards['redis-floor'] = optional.redisFloor;
  if (optional.redisNilFloor) guards['redis-floor-nil'] = optional.redisNilFloor;
  if (optional.pgFloor) guards['pg-floor'] = optional.pgFloor;

  // The routes' guards are built above, one per backend; the module is imported as in
  // any app, for what it sets up once (on Express, \`request.apiKey\` on the app's
  // request prototype).
  @Module({ imports: [PassportModule, ApiAuthModule.forRoot({ prefix: PREFIX })], controllers: [buildController(guards)], providers: [HeaderApiKeyStrategy] })
  class BenchModule {}

  const app =
    adapterName === 'fastify'
      ? await NestFactory.create(BenchModule, new FastifyAdapter(), { logger: ['error'] })
      : await NestFactory.create(BenchModule, { logger: ['error'] });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };

  // Valid keys for every route; the Passport map gets its own plaintext key.
  const keys: Record<string, string> = {};
  const keySets: Record<string, string[]> = {};
  for (const scenario of scenarios) {
    const { key } = await scenario.service.issue({ ownerId: 'bench', name: scenario.route });
    keys[scenario.route] = key;
    if ((scenario.keyCount ?? 1) > 1) {
      keySets[scenario.route] = [key];
      // Names of the same length as the first's, so every record is the same size.
      for (let i = 1; i < scenario.keyCount!; i++) keySets[scenario.route]!.push((await scenario.service.issue({ ownerId: 'bench', name: scenario.route })).key);
    }
  }
  if (keys.redis) await optional.locateRedisRecord(keys.redis);
  const passportKey = (await scenarios[0]!.service.issue({ ownerId: 'bench', name: 'passport' })).key;
  passportKeys.set(passportKey, { ownerId: 'bench' });
  keys.passport = passportKey;

  // Primary-store call counts per scenario, and this process's CPU time (µs), which
  // the runner turns into CPU per request: the server's own cost, whatever the load
  // generator manages to send.
  const stats = () => {
    const cpu = process.cpuUsage();
    return { calls: Object.fromEntries(scenarios.map((s) => [s.route, { ...s.primaryCalls }])), cpuMicros: cpu.user + cpu.system, systemMicros: cpu.system };
  };

  // A runner that dies (a load generator that fails, Ctrl-C) must not leave this server
  // behind: an orphan, its profiler still sampling, took a fifth of a core and skewed
  // every later run on the machine.
  process.on('disconnect', () => process.exit(1));

  let profiler: GuardProfiler | null = null;
  process.on('message', async (message: { type: string }) => {
    if (message?.type === 'stats') process.send!({ type: 'stats', ...stats() });
    if (message?.type === 'profile-start') {
      profiler = new GuardProfiler();
      await profiler.start();
      process.send!({ type: 'profile-start' });
    }
    if (message?.type === 'profile-stop') {
      const share = await profiler!.stop();
      profiler = null;
      process.send!({ type: 'profile-stop', share });
    }
    if (message?.type === 'stop') {
      await app.close();
      for (const s of scenarios) await s.close();
      process.exit(0);
    }
  });
  process.send!({
    type: 'ready',
    port: address.port,
    keys,
    keySets,
    labels: Object.fromEntries(scenarios.map((s) => [s.route, s.label])),
    redisFloor: optional.redisFloor !== null,
    pgFloor: optional.pgFloor !== null,
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
