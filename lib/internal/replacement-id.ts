import { createHash } from 'node:crypto';

const DOMAIN = 'nestjs-api-auth:rotation:';

/**
 * The id `rotate` gives the replacement of key `oldId`: the same for every rotation
 * of that key, on every instance. Every backend refuses a second record with an id
 * it already stores, atomically (`DuplicateApiKeyError('id')`), so of any number of
 * rotations of one key exactly one can store its replacement, with no lock and no
 * change to the backend contract.
 *
 * The first 128 bits of SHA-256 over a domain-separated `oldId`, laid out as a
 * version 4 UUID: the shape of every id this library mints, so a store or column that
 * checks for it (a `uuid` column, a v4 validator) takes it. Ids are not secrets; that
 * this one is predictable from the old id gives nobody anything, since no caller
 * chooses the id of a record the service creates.
 */
export function replacementIdFor(oldId: string): string {
  const bytes = createHash('sha256').update(DOMAIN + oldId).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
