import { copyFileSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyDirName } from '@seq-test/core/internal';
import { describe, expect, it } from 'vitest';
import { BRIDGE, PYTHON } from '../pytest/helpers.js';
import { TestSandbox, waitFor } from '../support/processes.js';
import { autoCases, fixtureEnv, fixtureProject, inside, passed, type RunnerUnderTest } from './integration-auto.js';

// The fixture test file: marks, the allocation, the gate (test/memory/integration-auto.ts).
const TEST_FILE = `import os
import time


def _mark(kind):
    with open(os.environ["MEM_MARKS"], "a") as log:
        log.write("%s %s %d\\n" % (kind, os.environ["MEM_RUN"], time.monotonic_ns()))


def _open():
    names = ("open", "open-" + os.environ["MEM_RUN"])
    return any(os.path.exists(os.path.join(os.environ["MEM_GATES"], name)) for name in names)


def test_holds_memory_until_its_gate_opens():
    _mark("S")
    data = b"\\x01" * (int(os.environ["MEM_MIB"]) * 1024 * 1024)
    while not _open():
        time.sleep(0.02)
    _mark("E")
    assert data[-1] == 1
`;

const ARGS = ['-q', '-p', 'no:cacheprovider', 'test_mem.py'];

// The pytest plugin (seq_test_plugin.py, registered by the project's conftest.py as `seq-test init --pytest`
// does) on the first Python on PATH with pytest, reading "slots": "auto" from .seqtestrc.json. Without such
// a Python this file skips; the global setup has printed one line saying so.
describe.skipIf(PYTHON === null)('seq_test_plugin (pytest) in "slots": "auto" mode', () => {
  const runner: RunnerUnderTest = {
    name: 'pytest',
    prepare(sandbox) {
      const project = fixtureProject(sandbox, (dir, value) =>
        writeFileSync(join(dir, '.seqtestrc.json'), JSON.stringify(value)),
      );
      for (const file of ['seq_test_lock.py', 'seq_test_plugin.py', 'seq_subprocess.py'])
        copyFileSync(join(BRIDGE, 'templates', file), join(project.dir, file));
      writeFileSync(join(project.dir, 'conftest.py'), 'pytest_plugins = ["seq_test_plugin"]\n');
      writeFileSync(join(project.dir, 'pytest.ini'), '[pytest]\n');
      writeFileSync(join(project.dir, 'test_mem.py'), TEST_FILE);
      return project;
    },
    start(sandbox, project, run, key) {
      return sandbox.start(['-m', 'pytest', ...ARGS], {
        file: PYTHON?.path as string,
        cwd: project.dir,
        env: {
          ...fixtureEnv(project, run, key),
          PYTHONDONTWRITEBYTECODE: '1',
          PYTHONPATH: '',
          // The interpreter's other plugins are not under test and cost seconds per run.
          PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1',
        },
      });
    },
    expected(project) {
      const dir = realpathSync(project.dir);
      return {
        cwd: dir,
        config: join(dir, 'pytest.ini'),
        argv: (argv) => argv.join(' ') === ['pytest', ...ARGS].join(' '),
      };
    },
  };
  autoCases(runner);

  // The plugin looks for the settings from pytest's rootdir (key and slots did; maxSlots and memoryBudget
  // were looked for from the cwd, and outside a git work tree only there).
  it("pytest: run from a subdirectory, the project root's maxSlots and memoryBudget apply", async () => {
    const sandbox = new TestSandbox();
    const project = runner.prepare(sandbox);
    try {
      mkdirSync(project.gates, { recursive: true });
      mkdirSync(join(project.dir, 'sub'));
      project.settings({ slots: 'auto', maxSlots: 3, memoryBudget: '777M' });
      const key = `mem-pytest-${sandbox.marker}`;
      const run = sandbox.start(['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '../test_mem.py'], {
        file: PYTHON?.path as string,
        cwd: join(project.dir, 'sub'),
        env: { ...fixtureEnv(project, 'A', key), PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: '' },
      });
      await inside(project, 'A', run);
      const tickets = join(sandbox.stateDir, keyDirName(key), 'tickets');
      const [name] = readdirSync(tickets).filter((file) => !file.startsWith('.tmp-'));
      const ticket = JSON.parse(readFileSync(join(tickets, name as string), 'utf8'));
      expect(ticket.admission).toMatchObject({ mode: 'auto', maxSlots: 3, budgetBytes: 777 * 1024 ** 2 });
      writeFileSync(join(project.gates, 'open'), '');
      await passed(run, 'pytest');
    } finally {
      writeFileSync(join(project.gates, 'open'), '');
      await waitFor(() => sandbox.ours().length === 0, 60_000, 'no process left').catch(() => {});
      expect(sandbox.cleanup()).toBe(0);
    }
  });
});
