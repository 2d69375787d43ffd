import type { Logger } from '@nestjs/common';
import { safeErrorMessage } from './safe-error-message.js';

/** At most one error line per this many milliseconds, however often a dependency flaps. */
const QUIET_MS = 60_000;

/**
 * Logs when a dependency starts failing and when it answers again: a flood of requests
 * during an outage must not become a flood of log lines, and neither must a dependency
 * that flaps (a partition that comes and goes, one cluster shard of three down). After
 * a report, further outages within a minute are held back and counted in the next
 * report; one that lasts is reported when that minute is over, so the last line never
 * says "answers again" while it is down.
 */
export class OutageNotice {
  private down = false;
  /** Whether the current outage has been logged (its end is then logged too). */
  private reported = false;
  private lastReportAt: number | undefined;
  /** Outages since the last report that ended before they were reported. */
  private heldBack = 0;

  /** `subject` starts the sentence ("The rate limiter"); `consequence` says what callers get. */
  constructor(
    private readonly logger: Logger,
    private readonly subject: string,
    private readonly consequence: string,
  ) {}

  /** Notes a failure; logs it when it starts an outage that is not held back. The message comes from the error, which by contract names no key or hash. */
  failed(error: unknown): void {
    if (this.down && this.reported) return;
    this.down = true;
    const now = Date.now();
    if (this.lastReportAt !== undefined && now - this.lastReportAt < QUIET_MS) return;
    this.reported = true;
    this.lastReportAt = now;
    const earlier = this.heldBack > 0 ? ` (${this.heldBack} shorter outage${this.heldBack === 1 ? '' : 's'} since the last report)` : '';
    this.heldBack = 0;
    this.logger.error(`${this.subject} is unavailable; ${this.consequence}: ${safeErrorMessage(error)}${earlier}`);
  }

  /** Notes an answer; logs the end of a reported outage. */
  answered(): void {
    if (!this.down) return;
    this.down = false;
    if (this.reported) this.logger.log(`${this.subject} answers again.`);
    else this.heldBack++;
    this.reported = false;
  }
}
