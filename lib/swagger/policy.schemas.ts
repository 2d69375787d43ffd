import { MAX_QUOTA_BALANCE } from '../policy/rate-limiter.interface.js';
import { MANAGEMENT_SCHEMAS, nullable, type Json } from './schema-helpers.js';

/** The quota balance (`ApiKey.quota`) and the body of `POST /{id}/quota`. */
export function quotaSchemas(oas31: boolean): Json {
  const max = MAX_QUOTA_BALANCE;
  return {
    [MANAGEMENT_SCHEMAS.quotaBalance]: {
      type: 'object',
      additionalProperties: false,
      required: ['limit', 'remaining', 'refillsAt'],
      properties: {
        limit: { type: 'integer', minimum: 0, description: "The policy's quota limit." },
        remaining: { type: 'integer', minimum: 0, description: 'Credits left now; may exceed `limit` after a top-up, until the next refill.' },
        refillsAt: nullable({ type: 'string', format: 'date-time', description: 'When the balance returns to `limit`; `null`: never.' }, oas31),
      },
    },
    [MANAGEMENT_SCHEMAS.quotaChangeRequest]: {
      description: 'Exactly one of `set` (the balance becomes n) or `add` (the balance moves by n; negative takes away).',
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['set'], properties: { set: { type: 'integer', minimum: 0, maximum: max } } },
        { type: 'object', additionalProperties: false, required: ['add'], properties: { add: { type: 'integer', minimum: -max, maximum: max } } },
      ],
    },
  };
}

/**
 * `ApiKeyPolicy` as clients send and see it. The bounds mirror the core's
 * `validatePolicy`, which remains the one that decides; `counterKey` is server-side
 * bookkeeping and has no place here.
 */
export function policySchema(): Json {
  const maxCount = 1_000_000_000;
  const maxWindowMs = 366 * 86_400_000;
  return {
    type: 'object',
    additionalProperties: false,
    description:
      'Per-key limits, all optional: rate limits (429 `rate_limited`), a credit quota (429 `quota_exhausted`) and an ' +
      'IP allowlist (403 `ip_not_allowed`). `null` or `{}`: no limits.',
    properties: {
      rateLimits: {
        type: 'array',
        minItems: 1,
        maxItems: 10,
        description: 'Sliding-window limits, all enforced; names unique.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'limit', 'windowMs'],
          properties: {
            name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$', description: 'Names the limit in headers, e.g. "burst".' },
            limit: { type: 'integer', minimum: 1, maximum: maxCount, description: 'Requests allowed per window.' },
            windowMs: { type: 'integer', minimum: 1, maximum: maxWindowMs, description: 'Window length in milliseconds.' },
          },
        },
      },
      quota: {
        type: 'object',
        additionalProperties: false,
        required: ['limit'],
        properties: {
          limit: { type: 'integer', minimum: 0, maximum: maxCount, description: 'Credits per refill interval (or in total).' },
          refillIntervalMs: {
            type: 'integer',
            minimum: 1,
            maximum: maxWindowMs,
            description: 'Credits return to `limit` at every multiple of this since the Unix epoch. Omit: never refill.',
          },
        },
      },
      allowedIps: {
        type: 'array',
        minItems: 1,
        maxItems: 1000,
        items: { type: 'string' },
        description: 'IPv4/IPv6 addresses and CIDR ranges, e.g. "203.0.113.7", "10.0.0.0/8", "2001:db8::/32".',
      },
    },
  };
}
