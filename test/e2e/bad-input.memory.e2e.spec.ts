import { MemoryBackend } from 'nestjs-api-auth';
import { describeBadInput } from '../fixtures/bad-input.js';

// The same suite runs for every backend; this is the in-memory one.
describeBadInput('MemoryBackend', () => ({ backend: new MemoryBackend() }));
