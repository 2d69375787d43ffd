export { BASE62_ALPHABET, SECRET_LENGTH } from './base62.js';
export { CHECKSUM_LENGTH, checksum } from './checksum.js';
export { KeyFormat, assertValidPrefix, keyLength, type KeyRejection, type ParsedKey } from './key-format.js';
export { KeyHasher } from './key-hasher.js';
