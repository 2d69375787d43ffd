import type { ResolvedApiAuthOptions } from '../api-auth.options.js';
import { toApiKeyView, type ApiKey } from '../api-key.interface.js';
import { ApiKeyAlreadyRotatedError, ApiKeyValidationError, DuplicateApiKeyError } from '../api-key.errors.js';
import { ApiKeyEventName } from '../events/api-key.events.js';
import { replacementIdFor } from '../internal/replacement-id.js';
import { hasLimits } from '../policy/policy.validation.js';
import { shownId, validateIssuedById, validateName } from './key-input.validation.js';
import type { IssuedApiKey, RotateApiKeyOptions, RotatedApiKey } from './key-inputs.js';
import type { KeyMinter } from './key-minter.js';
import type { EmitEvent, StoreWrites } from './store-writes.js';
import { expiryForReplacement } from './key-lifetime.js';

/** What a rotation needs from the service it runs in. */
export interface KeyRotationContext {
  readonly options: ResolvedApiAuthOptions;
  readonly store: StoreWrites;
  readonly minter: KeyMinter;
  readonly emit: EmitEvent;
}

/**
 * Replaces a key (see `ApiKeyService.rotate`): mints the replacement under an id
 * derived from the old one, so that of racing rotations exactly one creates it, then
 * ends the old key after the grace period.
 */
export async function rotateKey(context: KeyRotationContext, id: string, options: RotateApiKeyOptions): Promise<RotatedApiKey> {
  const { store, minter } = context;
  const grace = options.gracePeriodMs ?? 0;
  if (!Number.isSafeInteger(grace) || grace < 0) {
    throw new ApiKeyValidationError('gracePeriodMs', 'must be a non-negative integer of milliseconds');
  }
  const issuedBy = options.issuedById === undefined ? undefined : validateIssuedById(options.issuedById);
  const old = await store.require(id);
  const now = new Date();
  const replacementId = replacementIdFor(old.id);
  const revoked = old.revokedAt !== null;
  if (revoked || (old.expiresAt !== null && old.expiresAt <= now)) {
    // A rotation without a grace period ends the old key itself: one that lost the
    // race to it reads an expired key, and must say that the key was rotated.
    const replacement = await store.backend.getById(replacementId);
    if (replacement?.rotatedFromId === old.id) throw new ApiKeyAlreadyRotatedError(shownId(old.id), replacementId);
    throw new ApiKeyValidationError('id', revoked ? 'a revoked key cannot be rotated' : 'an expired key cannot be rotated');
  }
  await minter.assertRoomFor(old.ownerId);
  let issued: IssuedApiKey;
  try {
    issued = await minter.mint(replacementFields(context.options, old, options, issuedBy, now), now, replacementId);
  } catch (error) {
    // Another rotation stored the replacement first. This one must not touch the old
    // key: the winner has set (or is setting) its grace period.
    if (error instanceof DuplicateApiKeyError && error.field === 'id') {
      throw new ApiKeyAlreadyRotatedError(shownId(old.id), replacementId);
    }
    throw error;
  }
  // The grace period starts once the replacement exists, so a slow store does not
  // eat into the time clients have to switch over.
  const graceEnd = new Date(Date.now() + grace);
  let previous: ApiKey;
  try {
    // Only `expiresAt` is written, pinned to the version read: a concurrent update of
    // the old key (scopes, policy) is kept, and a moved expiry is re-read, never undone.
    previous = await store.withConflictRetry(
      old.id,
      undefined,
      ({ expiresAt }) => (expiresAt !== null && expiresAt <= graceEnd ? null : { expiresAt: graceEnd, updatedAt: now }),
      old,
    );
  } catch (error) {
    // The caller gets this error, not the new plaintext, so nobody can use the
    // replacement; left stored, it would refuse every retry as "already rotated".
    await store.backend.delete(replacementId).catch(() => undefined);
    throw error;
  }
  context.emit(() => ({ type: ApiKeyEventName.Rotated, apiKey: { ...issued.apiKey }, previous: toApiKeyView(previous), at: now }));
  return { ...issued, previous: toApiKeyView(previous) };
}

function replacementFields(
  options: ResolvedApiAuthOptions,
  old: ApiKey,
  rotation: RotateApiKeyOptions,
  issuedBy: string | null | undefined,
  now: Date,
) {
  return {
    ownerId: old.ownerId,
    name: rotation.name === undefined ? old.name : validateName(rotation.name),
    scopes: old.scopes,
    metadata: old.metadata,
    // Rotation takes no expiry, so it cannot be refused for one: under keyLifetime.maxMs
    // the replacement's is capped, which brings keys from before the limit within it.
    expiresAt: expiryForReplacement(old.expiresAt, now, options.keyLifetime),
    rotatedFromId: old.id,
    // A key imported under an environment this deployment no longer accepts gets the current one.
    environment: options.environments.includes(old.environment ?? null) ? (old.environment ?? null) : options.environment,
    // The replacement shares the old key's counters: rotating must not buy fresh credits.
    policy: old.policy && hasLimits(old.policy) ? { ...old.policy, counterKey: old.policy.counterKey ?? old.id } : old.policy,
    issuedById: issuedBy === undefined ? (old.issuedById ?? null) : issuedBy,
  };
}
