import type { ApiKeyBackend } from '../backends/backend.interface.js';
import type { BackendConformanceOptions, ConformanceRunner, ConformanceSuite } from './conformance/conformance-options.js';
import { listAndUsageCases } from './conformance/lists-and-usage.cases.js';
import { purgeCases } from './conformance/purge.cases.js';
import { replaceHashCases } from './conformance/replace-hash.cases.js';
import { recordCases } from './conformance/records.cases.js';
import { statusCases } from './conformance/status.cases.js';
import { updateCases } from './conformance/updates.cases.js';

export { makeApiKeyRecord } from './conformance/record-fixtures.js';
export type { BackendConformanceOptions, ConformanceRunner } from './conformance/conformance-options.js';

/**
 * Registers the backend contract's tests with your runner. Every backend shipped with
 * the library passes it; run it against your own:
 *
 * ```ts
 * import { describe, it, beforeAll, afterAll } from 'vitest';
 * import { runBackendConformance } from 'nestjs-api-auth/testing';
 * runBackendConformance('MyBackend', { describe, it, beforeAll, afterAll }, { create: () => new MyBackend() });
 * ```
 */
export function runBackendConformance<B extends ApiKeyBackend>(
  name: string,
  runner: ConformanceRunner,
  options: BackendConformanceOptions<B>,
): void {
  const { describe, it, beforeAll, afterAll } = runner;
  const suite = {} as ConformanceSuite<B>;

  describe(`${name} keeps the ApiKeyBackend contract`, () => {
    beforeAll(async () => {
      suite.backend = await options.create();
    });
    afterAll(async () => {
      if (suite.backend && options.destroy) await options.destroy(suite.backend);
    });
    // Each contract area in its own file under conformance/; a capability adds its own.
    recordCases(it, suite, options);
    updateCases(it, suite, options);
    listAndUsageCases(it, suite, options);
    describe('purge (optional: deletes expired and revoked records in bounded batches)', () => purgeCases(it, suite));
    describe('replaceHash (optional: moves a key to a new hash, for pepper rotation)', () => replaceHashCases(it, suite, options));
    statusCases(describe, it, suite);
  });
}
