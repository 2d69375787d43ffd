// Plain OpenAPI objects, typed loosely: this file must not need @nestjs/swagger's types
// to describe routes that exist without it.
export type Json = Record<string, any>;

/** Names of the component schemas the management routes reference. */
export const MANAGEMENT_SCHEMAS = {
  apiKey: 'ApiKey',
  policy: 'ApiKeyPolicy',
  issueRequest: 'IssueApiKeyRequest',
  updateRequest: 'UpdateApiKeyRequest',
  rotateRequest: 'RotateApiKeyRequest',
  issued: 'IssuedApiKey',
  rotated: 'RotatedApiKey',
  page: 'ApiKeyPage',
  allPage: 'ApiKeyListAllPage',
  error: 'ApiKeyErrorResponse',
  limitError: 'ApiKeyLimitErrorResponse',
  validationError: 'ApiKeyValidationErrorResponse',
  quotaBalance: 'ApiKeyQuotaBalance',
  quotaChangeRequest: 'ApiKeyQuotaChangeRequest',
} as const;

export const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });

/** A nullable schema in the dialect of the document's OpenAPI version. */
export function nullable(schema: Json, oas31: boolean): Json {
  if (!oas31) return { ...schema, nullable: true };
  return { ...schema, type: [schema.type, 'null'] };
}

/** A `$ref` that may also be `null` (siblings of a bare `$ref` are ignored in OpenAPI 3.0). */
export function nullableRef(name: string, description: string, oas31: boolean): Json {
  if (!oas31) return { allOf: [ref(name)], nullable: true, description };
  return { oneOf: [ref(name), { type: 'null' }], description };
}
