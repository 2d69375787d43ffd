import { createHash } from 'node:crypto';

const DOMAIN = 'nestjs-api-auth:rotation:';

/**
 * The id `rotate` gives the replacement of key `oldId`: the same for every rotation of
 * that key, on every instance, so the backend's atomic duplicate-id check lets exactly
 * one rotation store it. A v4-shaped UUID from SHA-256 over `oldId`
 * (docs/internals.md#the-id-of-a-rotations-replacement-replacement-idts).
 */
export function replacementIdFor(oldId: string): string {
  const bytes = createHash('sha256').update(DOMAIN + oldId).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
