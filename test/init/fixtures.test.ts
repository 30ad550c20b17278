import { describe, it } from 'vitest';
import { TestSandbox } from '../support/processes.js';
import { checkout, doctorLines, fixtureNames, golden, readCase, worktreeDiff } from './golden.js';

/**
 * Every fixture repository under test/init/fixtures: doctor's findings before, the exact diff `init` makes,
 * doctor's findings after, and a second `init` that changes nothing. The cases share nothing (each has its
 * own sandbox, repository and state dir), so they run concurrently: most of their time is Node starting
 * the CLI, and two at once use both cores.
 */
describe.concurrent('init and doctor on fixture repositories', () => {
  for (const name of fixtureNames()) {
    const spec = readCase(name);
    it(`${name}: ${spec.title}`, async ({ expect }) => {
      const sandbox = new TestSandbox();
      let left = 0;
      try {
        const repo = checkout(sandbox, name);
        const before = await repo.cli(['doctor', '--json']);
        expect(doctorLines(before.stdout)).toBe(golden(name, 'doctor-before.txt', doctorLines(before.stdout)));

        const init = await repo.cli(['init', ...(spec.init ?? ['--yes'])]);
        expect(init.code, `${init.stdout}\n${init.stderr}`).toBe(0);
        const diff = worktreeDiff(repo);
        expect(diff).toBe(golden(name, 'init.diff', diff));
        expect(repo.git(['status', '--porcelain', '--untracked-files=all'])).not.toMatch(/seq-test-backup/);

        const after = await repo.cli(['doctor', '--json']);
        expect(doctorLines(after.stdout)).toBe(golden(name, 'doctor-after.txt', doctorLines(after.stdout)));

        repo.commitAll('after init');
        const again = await repo.cli(['init', ...(spec.init ?? ['--yes'])]);
        expect(again.code, again.stderr).toBe(0);
        expect(worktreeDiff(repo)).toBe('');
      } finally {
        left = sandbox.cleanup();
      }
      expect(left, 'processes the case left running').toBe(0);
    });
  }
});
