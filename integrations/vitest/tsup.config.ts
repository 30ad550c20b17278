import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/global-setup.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  target: 'node20',
  external: ['vitest', 'vite', '@seq-test/core'],
});
