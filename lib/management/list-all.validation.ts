import { ApiKeyValidationError } from '../api-key.errors.js';
import type { ApiKeyStatus } from '../backends/backend.interface.js';
import { API_KEY_STATUSES } from '../backends/key-status.js';
import { isEnvironmentName } from '../policy/environment.js';

/** The parts of a `GET /` query that belong to the listing across owners. */
export interface ListAllQueryPart {
  /** `?all=true`: every owner's keys, newest first. */
  all: boolean;
  environment?: string;
  status?: ApiKeyStatus;
  /** The rest of the query, for the owner listing's own validation (`ownerId`, `cursor`, `limit`). */
  rest: Record<string, unknown>;
}

const ALL_ONLY = ['environment', 'status'] as const;

function invalid(field: string, message: string): ApiKeyValidationError {
  return new ApiKeyValidationError(field, message);
}

/**
 * Takes `all`, `environment` and `status` out of a `GET /` query. `environment` and
 * `status` filter only the listing across owners, so without `all=true` they are a 400,
 * as any unknown field is.
 */
export function splitListAllQuery(query: unknown): ListAllQueryPart {
  if (query === null || typeof query !== 'object' || Array.isArray(query)) return { all: false, rest: (query ?? {}) as Record<string, unknown> };
  const { all, environment, status, ...rest } = query as Record<string, unknown>;
  if (all !== undefined && all !== 'true' && all !== 'false') throw invalid('all', 'must be true or false, given once');
  if (all !== 'true') {
    for (const field of ALL_ONLY) {
      if ((query as Record<string, unknown>)[field] !== undefined) throw invalid(field, 'filters only the listing across owners (all=true)');
    }
    return { all: false, rest };
  }
  const part: ListAllQueryPart = { all: true, rest };
  if (environment !== undefined) {
    if (!isEnvironmentName(environment)) throw invalid('environment', 'must be an environment name, given once');
    part.environment = environment;
  }
  if (status !== undefined) {
    if (typeof status !== 'string' || !(API_KEY_STATUSES as readonly string[]).includes(status)) {
      throw invalid('status', `must be one of ${API_KEY_STATUSES.join(', ')}, given once`);
    }
    part.status = status as ApiKeyStatus;
  }
  return part;
}
