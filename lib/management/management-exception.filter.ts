import { Catch, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import {
  ApiKeyAlreadyRotatedError,
  ApiKeyError,
  ApiKeyLimitReachedError,
  ApiKeyNotFoundError,
  ApiKeyRevokedError,
  ApiKeyValidationError,
  BackendUnavailableError,
  ListAllUnsupportedError,
  VersionConflictError,
} from '../api-key.errors.js';
import { safeErrorMessage } from '../internal/safe-error-message.js';

/** Body of every error the management routes answer with themselves. */
export interface ManagementErrorBody {
  statusCode: number;
  error: string;
  /** Stable machine-readable code: `validation_failed`, `not_found`, `already_rotated`, `version_conflict`, `forbidden_owner`, `scope_escalation`, ... */
  code: string;
  message: string;
  /** The request field at fault, for `validation_failed`. */
  field?: string;
  /** The key that replaced this one, for `already_rotated`. */
  replacementId?: string;
}

/** One body for "no such key" and "not your key", so a self-service caller learns nothing from the difference. */
export const NOT_FOUND_BODY: ManagementErrorBody = Object.freeze({
  statusCode: 404,
  error: 'Not Found',
  code: 'not_found',
  message: 'No API key with this id.',
});

/**
 * Turns the service's plain errors into HTTP answers for the management routes:
 * validation 400, unknown id 404, a second rotation of a key 409, an `If-Match`
 * (expected version) that no longer holds 412, store down 503.
 * The service stays transport-free; only this controller (and the guard) speak HTTP.
 */
@Catch(ApiKeyError)
export class ManagementExceptionFilter implements ExceptionFilter<ApiKeyError> {
  private readonly logger = new Logger('ApiAuth');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: ApiKeyError, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse();
    const adapter = this.adapterHost.httpAdapter;
    let body: ManagementErrorBody;
    if (error instanceof ApiKeyValidationError) {
      body = { statusCode: 400, error: 'Bad Request', code: 'validation_failed', field: error.field, message: error.message };
    } else if (error instanceof ApiKeyNotFoundError) {
      body = NOT_FOUND_BODY;
    } else if (error instanceof ApiKeyAlreadyRotatedError) {
      // The caller may see the key it named, so it may see that key's replacement: same owner.
      body = {
        statusCode: 409,
        error: 'Conflict',
        code: 'already_rotated',
        message: 'This API key was already rotated; a key is rotated once.',
        replacementId: error.replacementId,
      };
    } else if (error instanceof VersionConflictError) {
      body = {
        statusCode: 412,
        error: 'Precondition Failed',
        code: 'version_conflict',
        message: `The API key is at version ${error.actualVersion}; read it again and retry.`,
      };
    } else if (error instanceof ApiKeyLimitReachedError) {
      body = { statusCode: 409, error: 'Conflict', code: error.code, message: error.message };
    } else if (error instanceof ApiKeyRevokedError) {
      body = { statusCode: 409, error: 'Conflict', code: error.code, message: 'This API key is revoked; revocation is final.' };
    } else if (error instanceof ListAllUnsupportedError) {
      body = { statusCode: 501, error: 'Not Implemented', code: error.code, message: error.message };
    } else if (error instanceof BackendUnavailableError) {
      adapter.setHeader(response, 'Retry-After', '1');
      body = {
        statusCode: 503,
        error: 'Service Unavailable',
        code: 'backend_unavailable',
        message: 'The API key store is temporarily unavailable. Retry later.',
      };
    } else {
      // By the backend contract these messages name no key and no hash.
      this.logger.error(`Key management failed: ${error.name}: ${safeErrorMessage(error)}`);
      body = { statusCode: 500, error: 'Internal Server Error', code: 'internal_error', message: 'Internal server error.' };
    }
    adapter.reply(response, body, body.statusCode);
  }
}
