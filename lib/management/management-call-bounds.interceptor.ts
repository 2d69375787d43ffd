import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Observable, throwError } from 'rxjs';
import { API_AUTH_OPTIONS } from '../api-auth.constants.js';
import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import { BackendUnavailableError } from '../api-key.errors.js';
import { ReplyDeadlines } from '../internal/reply-deadlines.js';
import { backendTimedOut } from '../verification/key-verifier.js';

/**
 * Bounds the key-management routes as `verifyTimeoutMs` and `maxPendingLookups` bound
 * the guard's lookups: a deadline on the whole handler (then 503 `backend_unavailable`
 * with `Retry-After`; a write may still land, so a 503 means "outcome unknown") and at
 * most `maxPendingLookups` calls pending, counted apart from lookups and until the store
 * settles them; `0` turns either off. The policy: docs/management.md, "Who may do what".
 */
@Injectable()
export class ManagementCallBounds implements NestInterceptor {
  private pending = 0;
  private readonly maxPending: number;
  private readonly deadlines: ReplyDeadlines | null;

  constructor(@Inject(API_AUTH_OPTIONS) options: ResolvedApiAuthOptions) {
    const ms = options.verifyTimeoutMs;
    this.maxPending = options.maxPendingLookups;
    this.deadlines = ms > 0 ? new ReplyDeadlines(ms, backendTimedOut) : null;
  }

  /** Management calls started and not yet settled by the store, timed-out ones included. */
  get pendingCalls(): number {
    return this.pending;
  }

  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (this.maxPending !== 0 && this.pending >= this.maxPending) {
      const error = new BackendUnavailableError(`${this.maxPending} key-management calls are pending; refusing without asking the backend.`);
      return throwError(() => error);
    }
    this.pending++;
    return new Observable((subscriber) => {
      let settled = false;
      const deadline = this.deadlines?.start((error) => subscriber.error(error));
      const settle = () => {
        if (settled) return;
        settled = true;
        this.pending--;
        if (deadline !== undefined) this.deadlines!.clear(deadline);
      };
      // Not unsubscribed when the deadline answers: the count must follow the store.
      next.handle().subscribe({
        next: (value) => subscriber.next(value),
        error: (error: unknown) => {
          settle();
          subscriber.error(error);
        },
        complete: () => {
          settle();
          subscriber.complete();
        },
      });
    });
  }
}
