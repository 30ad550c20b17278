import { cpSync, readdirSync } from 'node:fs';
import { defineConfig } from 'tsup';

/** The pytest plugin's Python sources: integrations/pytest holds them (its wheel is built from them too). */
const PYTHON_SOURCES = '../../integrations/pytest/templates';

export default defineConfig({
  entry: ['src/bin.ts', 'src/index.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  target: 'node20',
  // `seq-test init --pytest` writes them (src/setup/pytest-files.ts): copied, not kept twice in git.
  onSuccess: async () => {
    for (const name of readdirSync(PYTHON_SOURCES).filter((f) => f.endsWith('.py')))
      cpSync(`${PYTHON_SOURCES}/${name}`, `dist/pytest/${name}`);
  },
});
