export {
  makeApiKeyRecord,
  runBackendConformance,
  type BackendConformanceOptions,
  type ConformanceRunner,
} from './backend-conformance.js';
