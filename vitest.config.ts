import { fileURLToPath } from 'node:url';
import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

const lib = (path: string) => fileURLToPath(new URL(`./lib/${path}`, import.meta.url));

export default defineConfig({
  // Nest resolves constructor parameters from `design:paramtypes`; esbuild (Vitest's
  // default transform) does not emit that metadata, so injection by type would
  // silently resolve to undefined. SWC emits it.
  plugins: [swc.vite({ module: { type: 'es6' } })],
  resolve: {
    // Tests import the package by its public name, exactly as a user would.
    alias: [
      { find: /^nestjs-api-auth$/, replacement: lib('index.ts') },
      { find: /^nestjs-api-auth\/mikro-orm$/, replacement: lib('mikro-orm/index.ts') },
      { find: /^nestjs-api-auth\/redis$/, replacement: lib('redis/index.ts') },
      { find: /^nestjs-api-auth\/backend$/, replacement: lib('backends/index.ts') },
      { find: /^nestjs-api-auth\/testing$/, replacement: lib('testing/index.ts') },
      { find: /^nestjs-api-auth\/swagger$/, replacement: lib('swagger/index.ts') },
      { find: /^nestjs-api-auth\/terminus$/, replacement: lib('terminus/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.spec.ts'],
    environment: 'node',
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Test files share each worker's module graph instead of importing Nest, MikroORM
    // and the library anew per file: most of the suite's time went to those imports.
    // Every file cleans up what it starts, so nothing leaks from one to the next.
    isolate: false,
  },
});
