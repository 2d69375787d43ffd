import type { Logger } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OutageNotice } from '../../lib/internal/outage-notice.js';

function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = {
    error: (message: string) => lines.push(`error: ${message}`),
    log: (message: string) => lines.push(`log: ${message}`),
  } as unknown as Logger;
  return { logger, lines };
}

describe('OutageNotice', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(0);
  });
  afterEach(() => vi.useRealTimers());

  it('logs the start and the end of one outage once each, however many calls fail', () => {
    const { logger, lines } = recordingLogger();
    const notice = new OutageNotice(logger, 'The rate limiter', 'answering 503');
    for (let i = 0; i < 100; i++) notice.failed(new Error('connection refused'));
    notice.answered();
    notice.answered();
    expect(lines).toEqual(['error: The rate limiter is unavailable; answering 503: connection refused', 'log: The rate limiter answers again.']);
  });

  it('holds back the outages of a flapping dependency for a minute and counts them in the next report', () => {
    const { logger, lines } = recordingLogger();
    const notice = new OutageNotice(logger, 'The rate limiter', 'answering 503');
    notice.failed(new Error('down'));
    notice.answered();
    for (let second = 1; second <= 59; second++) {
      vi.setSystemTime(second * 1000);
      notice.failed(new Error('down'));
      notice.answered();
    }
    expect(lines).toHaveLength(2);
    vi.setSystemTime(60_000);
    notice.failed(new Error('down again'));
    notice.answered();
    expect(lines.slice(2)).toEqual([
      'error: The rate limiter is unavailable; answering 503: down again (59 shorter outages since the last report)',
      'log: The rate limiter answers again.',
    ]);
  });

  it('reports a held-back outage that lasts once the quiet minute is over, so the last line never says it answers', () => {
    const { logger, lines } = recordingLogger();
    const notice = new OutageNotice(logger, 'The API key backend', 'answering 503');
    notice.failed(new Error('first'));
    vi.setSystemTime(1_000);
    notice.answered();
    vi.setSystemTime(2_000);
    notice.failed(new Error('second'));
    vi.setSystemTime(59_999);
    notice.failed(new Error('second'));
    expect(lines).toEqual(['error: The API key backend is unavailable; answering 503: first', 'log: The API key backend answers again.']);
    vi.setSystemTime(60_000);
    notice.failed(new Error('second'));
    notice.failed(new Error('second'));
    expect(lines.slice(2)).toEqual(['error: The API key backend is unavailable; answering 503: second']);
    notice.answered();
    expect(lines.at(-1)).toBe('log: The API key backend answers again.');
  });

  it('says "outage" for one held-back outage', () => {
    const { logger, lines } = recordingLogger();
    const notice = new OutageNotice(logger, 'The rate limiter', 'answering 503');
    notice.failed(new Error('a'));
    notice.answered();
    vi.setSystemTime(10_000);
    notice.failed(new Error('b'));
    notice.answered();
    vi.setSystemTime(70_000);
    notice.failed(new Error('c'));
    expect(lines.at(-1)).toBe('error: The rate limiter is unavailable; answering 503: c (1 shorter outage since the last report)');
  });
});
