import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { API_AUTH_OPTIONS } from '../api-auth.constants.js';
import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import { ApiKeyService } from '../api-key.service.js';
import { safeErrorMessage } from '../internal/safe-error-message.js';
import { claimPurgeTurn } from './purge-turn.js';

/**
 * Runs `ApiKeyService.purge` every `purge.intervalMs` when the module's `purge` option is
 * set: on the instance that claims the interval (see `claimPurgeTurn`), never twice at
 * once in one process, and not after shutdown began. A failure is logged and the next
 * interval tries again.
 */
@Injectable()
export class PurgeScheduler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('ApiAuth');
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private failing = false;

  constructor(
    @Inject(ApiKeyService) private readonly apiKeys: ApiKeyService,
    @Inject(API_AUTH_OPTIONS) private readonly options: ResolvedApiAuthOptions,
  ) {}

  onApplicationBootstrap(): void {
    this.start();
  }

  /** Starts the timer (idempotent); nothing without the `purge` option. */
  start(): void {
    const purge = this.options.purge;
    if (purge === null || this.timer !== null) return;
    this.timer = setInterval(() => void this.tick(), purge.intervalMs);
    // A purge timer alone must not keep a process alive.
    this.timer.unref?.();
  }

  /** One interval's turn: claims it and, if this instance won it, purges. Resolves when done; never rejects. */
  tick(): Promise<void> {
    // A purge that outlasts its interval is not joined by a second one.
    this.running ??= this.runTurn().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Resolves once no purge of this instance is in progress. */
  async whenIdle(): Promise<void> {
    await this.running;
  }

  /** Stops the timer and waits for a purge in progress. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.whenIdle();
  }

  onModuleDestroy(): Promise<void> {
    return this.stop();
  }

  private async runTurn(): Promise<void> {
    const purge = this.options.purge;
    if (purge === null) return;
    const now = Date.now();
    try {
      if (!(await claimPurgeTurn(this.options.usageCoordinator, purge.intervalMs, now))) return;
      await this.apiKeys.purge({
        ...(purge.expiredFor === null ? {} : { expiredBefore: new Date(now - purge.expiredFor) }),
        ...(purge.revokedFor === null ? {} : { revokedBefore: new Date(now - purge.revokedFor) }),
        batchSize: purge.batchSize,
      });
      if (this.failing) this.logger.log('Purging API keys works again.');
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.logger.warn(`Could not purge API keys; will try again next interval: ${safeErrorMessage(error)}`);
      this.failing = true;
    }
  }
}
