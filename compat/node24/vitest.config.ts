import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import swc from 'unplugin-swc';
import { defineConfig, type Plugin } from 'vitest/config';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('../../', import.meta.url));
const lib = (path: string) => `${repo}lib/${path}`;

/**
 * Resolves every bare import of a package installed here (MikroORM 7, the current
 * @nestjs/*, pg, ...) from this folder's node_modules, wherever the importing file lives:
 * the library's sources and the repository's tests then run against this stack, one
 * copy of each package, never the repository's MikroORM 6.
 */
function fromThisStack(): Plugin {
  return {
    name: 'compat-stack',
    enforce: 'pre',
    async resolveId(source, importer, options) {
      if (!importer || source.startsWith('.') || source.startsWith('/') || source.startsWith('\0') || source.includes(':')) return null;
      const parts = source.split('/');
      const name = source.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
      if (!existsSync(`${here}node_modules/${name}/package.json`)) return null;
      return this.resolve(source, `${here}package.json`, { ...options, skipSelf: true });
    },
  };
}

export default defineConfig({
  root: repo,
  plugins: [fromThisStack(), swc.vite({ module: { type: 'es6' } })],
  resolve: {
    alias: [
      { find: /^nestjs-api-auth$/, replacement: lib('index.ts') },
      { find: /^nestjs-api-auth\/mikro-orm$/, replacement: lib('mikro-orm/index.ts') },
      { find: /^nestjs-api-auth\/testing$/, replacement: lib('testing/index.ts') },
      { find: /^nestjs-api-auth\/terminus$/, replacement: lib('terminus/index.ts') },
    ],
  },
  server: { fs: { allow: [repo] } },
  test: {
    include: [
      // The backend conformance suite and the backend's own contract tests, on PostgreSQL.
      'test/integration/mikro-orm.backend.spec.ts',
      'test/integration/mikro-orm.update.spec.ts',
      'test/integration/mikro-orm.storage.spec.ts',
      // The MikroORM e2e tests, each over Express and Fastify.
      'test/e2e/mikro-orm.e2e.spec.ts',
      'test/e2e/mikro-orm.outage.e2e.spec.ts',
      // The sample app on PostgreSQL.
      'test/e2e/mikro-orm.sample.e2e.spec.ts',
      // @mikro-orm/nestjs 7 wiring, and Terminus 12.2 without deprecation warnings.
      'compat/node24/test/**/*.spec.ts',
    ],
    environment: 'node',
    env: { NESTJS_API_AUTH_STACK: here.replace(/\/$/, '') },
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
