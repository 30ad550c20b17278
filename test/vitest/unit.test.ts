// The plugin's pure parts, without starting Vitest: reading what the user asked for, and forcing one
// worker onto resolved configs of each Vitest major (shapes as Vitest 3, 4 and 5 resolve them).
import { describe, expect, test } from 'vitest';
import { enforceOneWorker } from '../../integrations/vitest/src/enforce.js';
import { parallelRequests } from '../../integrations/vitest/src/requests.js';
import type { ProjectLike, VitestLike } from '../../integrations/vitest/src/vitest-shapes.js';
import { runCommand } from '../../packages/core/src/run-command.js';

describe('parallelRequests', () => {
  test('reads --maxWorkers in every spelling; the last one wins', () => {
    expect(parallelRequests(undefined, ['run', '--maxWorkers', '4'], {})).toEqual(['--maxWorkers 4 → 1']);
    expect(parallelRequests(undefined, ['--maxWorkers=50%'], {})).toEqual(['--maxWorkers 50% → 1']);
    expect(parallelRequests(undefined, ['--max-workers', '3', '--maxWorkers', '1'], {})).toEqual([]);
  });

  test('--fileParallelism is a boolean flag: it does not swallow the file filter after it', () => {
    expect(parallelRequests(undefined, ['--fileParallelism', 'tests/a.test.ts'], {})).toEqual([
      '--fileParallelism → off',
    ]);
    expect(parallelRequests(undefined, ['--no-file-parallelism'], {})).toEqual([]);
    expect(parallelRequests(undefined, ['--fileParallelism=false'], {})).toEqual([]);
  });

  test('environment variables of Vitest 3 (threads/forks) and 4+ (workers)', () => {
    expect(parallelRequests(undefined, [], { VITEST_MAX_WORKERS: '4', VITEST_MAX_FORKS: '1' })).toEqual([
      'VITEST_MAX_WORKERS=4 → 1',
    ]);
    expect(parallelRequests(undefined, [], { VITEST_MAX_THREADS: ' 8 ' })).toEqual(['VITEST_MAX_THREADS=8 → 1']);
  });

  test('the config file: root, pool options, inline projects', () => {
    const config = {
      maxWorkers: 3,
      fileParallelism: true,
      poolOptions: { forks: { maxForks: 2 }, threads: { maxThreads: 1 } },
      projects: ['packages/*', { test: { name: 'unit', maxWorkers: '50%' } }, { test: { name: 'e2e' } }],
    };
    expect(parallelRequests(config, [], {})).toEqual([
      'maxWorkers: 3 in the config → 1',
      'fileParallelism: true in the config → false',
      'poolOptions.forks.maxForks: 2 → 1',
      'project "unit" maxWorkers: 50% → 1',
    ]);
  });

  test('a value Vitest 5 merged from the CLI into the config is said once', () => {
    expect(
      parallelRequests({ maxWorkers: 4, fileParallelism: true }, ['--maxWorkers', '4', '--fileParallelism'], {}),
    ).toEqual(['--maxWorkers 4 → 1', '--fileParallelism → off']);
  });
});

function vitest(version: string, config: VitestLike['config'], projects: ProjectLike[] = []): VitestLike {
  const v: VitestLike = { version, config, projects };
  for (const p of projects) p.vitest = v;
  return v;
}
function project(name: string, config: ProjectLike['config']): ProjectLike {
  return { name, config, vitest: undefined as unknown as VitestLike };
}

describe('enforceOneWorker', () => {
  test('Vitest 3: maxWorkers, minWorkers and every pool option; the explicit values are reported', () => {
    const config: VitestLike['config'] = {
      maxWorkers: 4,
      fileParallelism: true,
      poolOptions: { forks: { maxForks: 3, minForks: 2, execArgv: ['--x'] } },
    };
    const changes = enforceOneWorker(vitest('3.2.7', config), []);
    expect(changes).toEqual(['maxWorkers 4 → 1', 'poolOptions.forks.maxForks 3 → 1']);
    expect(config).toMatchObject({ maxWorkers: 1, minWorkers: 1, fileParallelism: false });
    expect(config.poolOptions?.forks).toEqual({ maxForks: 1, minForks: 1, execArgv: ['--x'] });
    expect(config.poolOptions?.threads).toEqual({ maxThreads: 1, minThreads: 1 });
    // Idempotent: nothing left to change, nothing reported.
    expect(enforceOneWorker(vitest('3.2.7', config), [])).toEqual([]);
  });

  test('Vitest 4: no minWorkers or poolOptions appear; a project that only inherited the root value is not repeated', () => {
    const root = { maxWorkers: 4 };
    const inherited = project('a', { maxWorkers: 4 });
    const own = project('b', { maxWorkers: 2 });
    const changes = enforceOneWorker(vitest('4.1.12', root, [inherited, own]), [inherited, own]);
    expect(changes).toEqual(['maxWorkers 4 → 1', 'project "b": maxWorkers 2 → 1']);
    expect(root).toEqual({ maxWorkers: 1, fileParallelism: false });
    expect(own.config).toEqual({ maxWorkers: 1, fileParallelism: false });
  });

  test('Vitest 5: a resolved default (not provided) is changed silently', () => {
    const root = { maxWorkers: 7, providedOptions: {} };
    expect(enforceOneWorker(vitest('5.1.1', root), [])).toEqual([]);
    expect(root.maxWorkers).toBe(1);
    const given = { maxWorkers: 3, providedOptions: { maxWorkers: true } };
    expect(enforceOneWorker(vitest('5.1.1', given), [])).toEqual(['maxWorkers 3 → 1']);
  });

  test('Vitest 3: projects of different pools in one groupOrder get groups of their own, in start order', () => {
    const projects = [
      project('threads-a', { pool: 'threads', sequence: { groupOrder: 0 } }),
      project('forks-a', { pool: 'forks', sequence: { groupOrder: 0 } }),
      project('forks-b', { pool: 'forks', sequence: { groupOrder: 0 } }),
      project('late', { pool: 'vmThreads', sequence: { groupOrder: 2 } }),
      project('ten', { pool: 'forks', sequence: { groupOrder: 10 } }),
    ];
    enforceOneWorker(vitest('3.2.7', {}, projects), projects);
    const order = Object.fromEntries(projects.map((p) => [p.name, p.config.sequence?.groupOrder]));
    // Vitest 3 sorts groups as strings (10 before 2); within a group forks start before threads.
    expect(order).toEqual({ 'forks-a': 100000, 'forks-b': 100000, 'threads-a': 100001, ten: 100002, late: 100003 });
    // Every number has the same width, so Vitest 3's string sort keeps that order.
    const again = projects.map((p) => p.config.sequence?.groupOrder);
    enforceOneWorker(vitest('3.2.7', {}, projects), projects);
    expect(projects.map((p) => p.config.sequence?.groupOrder)).toEqual(again);
  });

  test('Vitest 4 and 5 keep the groupOrder (their groups already run one after another)', () => {
    const projects = [project('a', { pool: 'threads' }), project('b', { pool: 'forks' })];
    enforceOneWorker(vitest('4.1.12', {}, projects), projects);
    expect(projects.map((p) => p.config.sequence)).toEqual([undefined, undefined]);
  });
});

describe('runCommand', () => {
  test('a command that cannot start is a result (127), not an exception', async () => {
    const result = await runCommand(['seq-test-no-such-command-here']);
    expect(result.exitCode).toBe(127);
    expect(result.stderr).toContain('seq-test-no-such-command-here');
  });

  test('rejects bad arguments at once', () => {
    expect(() => runCommand([])).toThrow(/expects a command/);
    expect(() => runCommand('true', { timeoutMs: -1 })).toThrow(/timeoutMs/);
  });
});
