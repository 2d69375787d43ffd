export {
  makeApiKeyRecord,
  runBackendConformance,
  type BackendConformanceOptions,
  type ConformanceRunner,
} from './backend-conformance.js';
// Resolves module options exactly as ApiAuthModule does, for tests and scripts that
// build an ApiKeyService without Nest.
export { resolveApiAuthOptions } from '../options/resolve-options.js';
