import { defineConfig } from 'tsup';

export default defineConfig({
  // internal: what the CLI, Jest and Vitest packages share (`@seq-test/core/internal`, not a stable API).
  entry: ['src/index.ts', 'src/internal.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  shims: true,
});
