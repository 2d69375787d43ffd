import { afterAll, beforeAll, describe, it } from 'vitest';
import { CachedBackend, LocalInvalidationBus, MemoryBackend, withL1Cache, type ApiKey } from 'nestjs-api-auth';
import { runBackendConformance } from 'nestjs-api-auth/testing';

// The L1 must be invisible to the contract: same answers, copies and races as the store behind it.
runBackendConformance('CachedBackend(MemoryBackend)', { describe, it, beforeAll, afterAll }, {
  create: () => withL1Cache(new MemoryBackend()),
  storeLegacyRecord: async (backend, record) => void (await backend.primary.create(record as ApiKey)),
});

runBackendConformance('CachedBackend(MemoryBackend) with a bus', { describe, it, beforeAll, afterAll }, {
  create: () => new CachedBackend(new MemoryBackend(), { bus: new LocalInvalidationBus(), ttl: 60_000 }),
  destroy: (backend) => backend.close(),
  storeLegacyRecord: async (backend, record) => void (await backend.primary.create(record as ApiKey)),
});
