// Type-aware linting: an unawaited promise in a server is a bug waiting for a night sky.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'work/**', 'test-output/**', 'bench/results/**', 'bench/.build/**', 'bench/.build-baseline/**', 'src/modules/web-assets/viewer/**', '**/*.mjs', '**/*.mts', '**/*.js', '**/*.cjs', '.exp-*/**', '.docs-snippet-*/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      curly: ['error', 'all'],
      '@typescript-eslint/no-extraneous-class': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
