import { defineConfig } from 'tsup';

// The package is CommonJS by default (no "type" field) because Jest configs, presets, global hooks, runners
// and reporters are most often loaded with require(). The config helper also ships as ESM for
// jest.config.mjs / jest.config.ts. The four Jest entry points are CJS only: Jest loads them by path.
// No `clean`: emptying dist/ first would break Jest runs (and tests) that load it while a build runs.
export default defineConfig([
  {
    entry: { index: 'src/index.ts' },
    format: ['cjs', 'esm'],
    dts: true,
    sourcemap: true,
    target: 'node20',
    shims: true,
  },
  {
    entry: {
      'global-setup': 'src/global-setup.ts',
      'global-teardown': 'src/global-teardown.ts',
      runner: 'src/runner.ts',
      reporter: 'src/reporter.ts',
      'early-lock-worker': 'src/early-lock-worker.ts',
    },
    format: ['cjs'],
    sourcemap: true,
    target: 'node20',
    cjsInterop: true,
  },
]);
