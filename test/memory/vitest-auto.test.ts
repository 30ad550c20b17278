import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'vitest';
import { PLUGIN, REPO_VITEST, vitestEnv } from '../vitest/support.js';
import { autoCases, FIXTURE_TEST_BODY, fixtureEnv, fixtureProject } from './integration-auto.js';

// The fixture test file (test/memory/integration-auto.ts), importing what Jest has as globals.
const TEST_FILE = `import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';

${FIXTURE_TEST_BODY}`;

const CONFIG = `import { seqTest } from '@seq-test/vitest';
import { defineConfig } from 'vitest/config';

export default defineConfig({ plugins: [seqTest()], test: { include: ['mem.test.mjs'] } });
`;

// Vitest 4 (the repository's own, installed by npm ci) with @seq-test/vitest reading "slots": "auto" from
// the project's package.json.
describe('@seq-test/vitest in "slots": "auto" mode', () => {
  autoCases({
    name: 'vitest',
    prepare(sandbox) {
      const project = fixtureProject(sandbox, (dir, value) =>
        writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'mem', type: 'module', seqTest: value })),
      );
      mkdirSync(join(project.dir, 'node_modules', '@seq-test'), { recursive: true });
      symlinkSync(REPO_VITEST.vitest, join(project.dir, 'node_modules', 'vitest'));
      symlinkSync(PLUGIN, join(project.dir, 'node_modules', '@seq-test', 'vitest'));
      writeFileSync(join(project.dir, 'vitest.config.mjs'), CONFIG);
      writeFileSync(join(project.dir, 'mem.test.mjs'), TEST_FILE);
      return project;
    },
    start(sandbox, project, run, key) {
      const env = vitestEnv({ dir: project.dir, stamps: project.gates, key, install: REPO_VITEST });
      return sandbox.start([join(REPO_VITEST.vitest, 'vitest.mjs'), 'run'], {
        file: REPO_VITEST.node,
        cwd: project.dir,
        env: { ...env, ...fixtureEnv(project, run, key) },
      });
    },
    expected(project) {
      const dir = realpathSync(project.dir);
      return {
        cwd: dir,
        config: join(dir, 'vitest.config.mjs'),
        argv: (argv) => argv.length === 2 && argv[0]?.endsWith('vitest.mjs') === true && argv[1] === 'run',
      };
    },
  });
});
