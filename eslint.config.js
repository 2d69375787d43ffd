import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'dist-sample/', 'dist-bench/', 'dist-scripts/', 'node_modules/', 'coverage/', 'bench/results/', 'compat/node24/.bench/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['warn', 'error'] }],
    },
  },
  {
    // The sample, the benchmarks, scripts and compat runners talk to a terminal on purpose.
    files: ['sample/**', 'bench/**', 'scripts/**', 'test/**', 'compat/**'],
    rules: { 'no-console': 'off' },
  },
);
