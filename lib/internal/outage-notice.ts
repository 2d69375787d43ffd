import type { Logger } from '@nestjs/common';
import { safeErrorMessage } from './safe-error-message.js';

/**
 * Logs when a dependency starts failing and when it answers again, once each: a flood
 * of requests during an outage must not become a flood of log lines.
 */
export class OutageNotice {
  private down = false;

  /** `subject` starts the sentence ("The rate limiter"); `consequence` says what callers get. */
  constructor(
    private readonly logger: Logger,
    private readonly subject: string,
    private readonly consequence: string,
  ) {}

  /** Logs the first failure of an outage. The message comes from the error, which by contract names no key or hash. */
  failed(error: unknown): void {
    if (this.down) return;
    this.down = true;
    this.logger.error(`${this.subject} is unavailable; ${this.consequence}: ${safeErrorMessage(error)}`);
  }

  /** Logs the end of an outage, if there was one. */
  answered(): void {
    if (!this.down) return;
    this.down = false;
    this.logger.log(`${this.subject} answers again.`);
  }
}
