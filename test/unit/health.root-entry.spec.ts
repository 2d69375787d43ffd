import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../fixtures/import-graph.js';

// The per-key features live in the root entry, which must load neither @nestjs/terminus
// (its own subpath entry) nor @nestjs/event-emitter (only typed structurally) nor Redis.

const LIB = fileURLToPath(new URL('../../lib/', import.meta.url));

/** Packages loaded at run time by every lib file reachable from `entry`. */
async function runtimePackages(entry: string): Promise<Set<string>> {
  return (await importGraph(entry)).packages;
}

describe('entries of the per-key features', () => {
  it('the root entry loads no terminus, event emitter, Redis or cache-manager', async () => {
    const root = [...(await runtimePackages(join(LIB, 'index.ts')))];
    expect(root).toContain('@nestjs/common');
    expect(root.filter((p) => /^(@nestjs\/terminus|@nestjs\/event-emitter|eventemitter2|redis|@redis\/|cache-manager|keyv|@keyv\/)/.test(p))).toEqual([]);
  });

  it('nestjs-api-auth/terminus loads @nestjs/terminus, and still no Redis', async () => {
    const terminus = [...(await runtimePackages(join(LIB, 'terminus/index.ts')))];
    expect(terminus).toContain('@nestjs/terminus');
    expect(terminus.filter((p) => /^(redis|@redis\/|@mikro-orm\/)/.test(p))).toEqual([]);
  });
});
