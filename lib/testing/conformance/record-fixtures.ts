import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { ApiKey } from '../../api-key.interface.js';

/** A valid record with random id, hash and owner; override any field. */
export function makeApiKeyRecord(overrides: Partial<ApiKey> = {}): ApiKey {
  const now = new Date(Math.floor(Date.now() / 1000) * 1000 + 123);
  return {
    id: randomUUID(),
    name: 'conformance key',
    ownerId: `owner-${randomUUID()}`,
    keyHash: createHash('sha256').update(randomBytes(32)).digest('hex'),
    hint: 'sk_…AbCd',
    scopes: ['read', 'write:things'],
    metadata: { plan: 'pro', nested: { n: 1, list: [1, 'two', null] }, text: 'ünïcødé ✓' },
    createdAt: now,
    updatedAt: now,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
    rotatedFromId: null,
    environment: null,
    policy: null,
    version: 1,
    issuedById: null,
    disabledAt: null,
    ...overrides,
  };
}

/**
 * Marks a case that does not apply to this backend as skipped where the runner can
 * (Vitest's test context has `skip`); elsewhere it simply passes.
 */
export function skipped(context: unknown): void {
  const skip = (context as { skip?: (note?: string) => void } | undefined)?.skip;
  if (typeof skip === 'function') skip('not implemented by this backend');
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

export function assertSameRecord(actual: ApiKey | null, expected: ApiKey): void {
  assert.ok(actual, `record ${expected.id} should exist`);
  assert.deepEqual({ ...actual }, { ...expected });
  for (const field of ['createdAt', 'updatedAt'] as const) assert.ok(actual[field] instanceof Date, `${field} is a Date`);
}
