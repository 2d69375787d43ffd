import { describe, expect, it } from 'vitest';
import { ApiKeyValidationError } from 'nestjs-api-auth';
import { assertMetadataShape, MAX_METADATA_DEPTH } from '../../lib/management/metadata-shape.js';
import { makeService } from '../fixtures/service.js';

/** `{ a: { a: ... leaf } }` with `depth` objects. */
function nested(depth: number, leaf: unknown = 1): Record<string, unknown> {
  let value: unknown = leaf;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value as Record<string, unknown>;
}

const refusal = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return error;
  }
  return null;
};

describe('assertMetadataShape', () => {
  it(`accepts ${MAX_METADATA_DEPTH} levels of objects and arrays, refuses one more`, () => {
    expect(refusal(() => assertMetadataShape(nested(MAX_METADATA_DEPTH), 8192))).toBeNull();
    const deeper = refusal(() => assertMetadataShape(nested(MAX_METADATA_DEPTH + 1), 8192));
    expect(deeper).toBeInstanceOf(ApiKeyValidationError);
    expect(deeper).toMatchObject({ field: 'metadata', message: expect.stringContaining(`${MAX_METADATA_DEPTH} levels`) });
    const arrays = { list: JSON.parse(`${'['.repeat(MAX_METADATA_DEPTH)}${']'.repeat(MAX_METADATA_DEPTH)}`) as unknown };
    expect(refusal(() => assertMetadataShape(arrays, 8192))).toBeInstanceOf(ApiKeyValidationError);
  });

  it('refuses 20,000 levels with a validation error, where JSON.stringify throws RangeError', () => {
    const deep = nested(20_000);
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    expect(refusal(() => assertMetadataShape(deep, 1_000_000))).toMatchObject({ field: 'metadata' });
  });

  it('refuses a cycle as too deep, and treats a value with toJSON as a leaf', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(refusal(() => assertMetadataShape(cyclic, 8192))).toBeInstanceOf(ApiKeyValidationError);
    expect(refusal(() => assertMetadataShape({ at: new Date(0), when: { nested: new Date(0) } }, 8192))).toBeNull();
  });

  it('stops after maxBytes values: more values than bytes cannot fit, however sparse the array', () => {
    const sparse = { list: new Array(1_000_000_000) };
    const error = refusal(() => assertMetadataShape(sparse, 8192));
    expect(error).toMatchObject({ field: 'metadata', message: expect.stringContaining('8192 bytes') });
    // The object, the array and 99 numbers: 101 values.
    expect(refusal(() => assertMetadataShape({ list: Array.from({ length: 99 }, () => 1) }, 101))).toBeNull();
    expect(refusal(() => assertMetadataShape({ list: Array.from({ length: 100 }, () => 1) }, 101))).toBeInstanceOf(ApiKeyValidationError);
  });
});

describe('ApiKeyService refuses deep metadata with ApiKeyValidationError, storing nothing', () => {
  it('on issue, import and update', async () => {
    const { service, backend } = makeService();
    const { apiKey } = await service.issue({ ownerId: 'o', name: 'n', metadata: { kept: true } });
    const deep = nested(20_000);
    await expect(service.issue({ ownerId: 'o', name: 'deep', metadata: deep })).rejects.toMatchObject({
      name: 'ApiKeyValidationError',
      field: 'metadata',
    });
    await expect(service.import({ keyHash: 'a'.repeat(64) }, { ownerId: 'o', name: 'deep', metadata: deep })).rejects.toMatchObject({
      field: 'metadata',
    });
    await expect(service.update(apiKey.id, { metadata: deep })).rejects.toMatchObject({ field: 'metadata' });
    expect(await service.countByOwner('o')).toBe(1);
    expect((await backend.getById(apiKey.id))?.metadata).toEqual({ kept: true });
  });
});
