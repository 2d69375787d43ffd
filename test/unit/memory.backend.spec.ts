import { afterAll, beforeAll, describe, it } from 'vitest';
import { MemoryBackend } from 'nestjs-api-auth';
import { runBackendConformance } from 'nestjs-api-auth/testing';

runBackendConformance('MemoryBackend', { describe, it, beforeAll, afterAll }, { create: () => new MemoryBackend() });
