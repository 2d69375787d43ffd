import { CachedBackend, LocalInvalidationBus, MemoryBackend } from 'nestjs-api-auth';
import { describeRaces, raceService, withLatency } from '../fixtures/race-suite.js';

// Two instances over one MemoryBackend: the store's own atomicity, with nothing in
// between but the latency a network would add (so that racers interleave).
describeRaces('MemoryBackend', async () => {
  const store = new MemoryBackend();
  return { one: raceService(withLatency(store)), two: raceService(withLatency(store)), propagationMs: 0, close: async () => undefined };
});

// Each instance with its own L1 over the shared store, kept in step by an in-process bus.
// The TTL is far beyond the test: only invalidations can make an instance forget a key.
describeRaces('CachedBackend (L1) over MemoryBackend, two L1s on one bus', async () => {
  const store = new MemoryBackend();
  const bus = new LocalInvalidationBus();
  const one = new CachedBackend(withLatency(store), { bus, ttl: 600_000, negativeTtl: 600_000 });
  const two = new CachedBackend(withLatency(store), { bus, ttl: 600_000, negativeTtl: 600_000 });
  return {
    one: raceService(one),
    two: raceService(two),
    propagationMs: 0,
    close: async () => {
      one.close();
      two.close();
    },
  };
});
