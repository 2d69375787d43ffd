import type { AuthenticationFailureCode } from '../api-key.errors.js';
import type { ApiKeyFailure } from './refusal.js';

/**
 * The response headers of a refusal: `WWW-Authenticate` on a 401 and on 403
 * `insufficient_scope` (RFC 6750 §3), `Retry-After` on 429 and 503, nothing on the other
 * 403s (the key is fine, so no challenge).
 */
export class RefusalHeaders {
  // A flood of bad keys would otherwise build the same string on every request.
  private readonly challenges = new Map<AuthenticationFailureCode, string>();
  private readonly challenge: string;

  constructor(realm: string) {
    this.challenge = `ApiKey realm="${realm}"`;
  }

  /** Calls `set` once for each header the refusal carries. */
  apply(failure: ApiKeyFailure, set: (name: string, value: string) => void): void {
    if (failure.code === 'insufficient_scope') {
      set('WWW-Authenticate', `${this.challenge}, error="insufficient_scope", scope="${failure.requirement.scopes.join(' ')}"`);
    } else if (failure.status === 401) {
      set('WWW-Authenticate', this.authenticationChallenge(failure.code));
    } else if (failure.status === 429) {
      if (failure.retryAfterMs !== null) set('Retry-After', String(Math.max(1, Math.ceil(failure.retryAfterMs / 1000))));
    } else if (failure.status === 503) {
      set('Retry-After', '1');
    }
  }

  private authenticationChallenge(code: AuthenticationFailureCode): string {
    let value = this.challenges.get(code);
    if (value === undefined) {
      // No error attribute when no credentials were sent at all.
      value = code === 'missing_api_key' ? this.challenge : `${this.challenge}, error="${code}"`;
      this.challenges.set(code, value);
    }
    return value;
  }
}
