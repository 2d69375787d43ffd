import { CachedBackend, LocalInvalidationBus, MemoryBackend } from 'nestjs-api-auth';
import { describeBadInput } from '../fixtures/bad-input.js';

// The in-process L1 in front of a store: its synchronous peek must not see malformed
// input either, and a negative entry must not turn a refusal into anything but a 401.
describeBadInput('CachedBackend (L1) over MemoryBackend', () => ({
  backend: new CachedBackend(new MemoryBackend(), { bus: new LocalInvalidationBus() }),
}));
