import { KeyHasher } from './key-hasher.js';

/**
 * Validates `previousPeppers` at start-up and builds a hasher for each: a string or
 * Buffer of at least 16 bytes, or `null` for keys stored before any pepper (plain
 * SHA-256). None may equal the current pepper.
 */
export function previousPepperHashers(previous: unknown, current: string | Buffer | null): KeyHasher[] {
  if (previous === undefined) return [];
  if (!Array.isArray(previous)) throw new Error('nestjs-api-auth: option "previousPeppers" must be an array.');
  const seen = new Set<string>([current === null ? '' : Buffer.from(current).toString('hex')]);
  return previous.map((pepper, index) => {
    if (pepper !== null && typeof pepper !== 'string' && !Buffer.isBuffer(pepper)) {
      throw new Error(`nestjs-api-auth: option "previousPeppers[${index}]" must be a string, a Buffer or null (got ${typeof pepper}).`);
    }
    const id = pepper === null ? '' : Buffer.from(pepper).toString('hex');
    if (seen.has(id)) {
      throw new Error(`nestjs-api-auth: option "previousPeppers[${index}]" repeats the current pepper or another previous one.`);
    }
    seen.add(id);
    try {
      return new KeyHasher(pepper);
    } catch {
      throw new Error(`nestjs-api-auth: option "previousPeppers[${index}]" must be at least 16 bytes long.`);
    }
  });
}
