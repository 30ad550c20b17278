import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  describeWait,
  keyDirName,
  loadProjectConfig,
  projectKey,
  type QueueEntry,
  readStatus,
} from '@seq-test/core/internal';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, type Started, TestSandbox, waitFor } from '../support/processes.js';
import {
  CONTENDER,
  NO_PYTHON,
  PYTHON,
  pytestProject,
  requireInterpreter,
  type Span,
  spans,
  TEMPLATES,
  ticketsIn,
  tsJob,
} from './helpers.js';

/**
 * The TypeScript implementation (`seq-test run`, @seq-test/core) and the Python one (the pytest bridge's
 * seq_test_lock.py) against each other, with real processes on one private state dir per test.
 */
describe.skipIf(NO_PYTHON)('conformance: TypeScript and Python share one queue', () => {
  let sandbox: TestSandbox;
  beforeAll(() => requireInterpreter(PYTHON));
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  const py = (args: string[], env: NodeJS.ProcessEnv): Started =>
    sandbox.start([CONTENDER, ...args], { file: PYTHON, env });
  const ts = (args: string[], env: NodeJS.ProcessEnv): Started => sandbox.start(['run', ...args], { env });

  it('a Python holder blocks a `seq-test run` waiter, which prints the same queue line', async () => {
    sandbox = new TestSandbox();
    const key = `py-holds-${sandbox.marker}`;
    const env = { SEQ_TEST_KEY: key };
    const log = join(sandbox.dir, 'log');
    const release = join(sandbox.dir, 'release');
    const holder = py(['--hold-until', release, '--log', log], env);
    await waitFor(() => existsSync(log), 30_000, 'the Python holder to hold');
    const waiter = ts(['--', ...tsJob(log, 0)], env);
    await waitFor(() => ticketsIn(sandbox.stateDir, key).length === 2, 30_000, 'the TS ticket');
    await waitFor(() => waiter.output.stderr.includes('waiting for the lock'), 30_000, 'the queue line');
    await new Promise((r) => setTimeout(r, 300));
    expect(waiter.child.exitCode).toBeNull();
    expect(waiter.output.stderr).toMatch(
      new RegExp(
        `^seq-test: waiting for the lock on ${key}: position 2 of 2, held by pid ${holder.child.pid} \\(py_contender\\) for \\S+ m?s; waited \\S+ m?s$`,
        'm',
      ),
    );
    writeFileSync(release, '');
    expect((await holder.finished).code).toBe(0);
    expect((await waiter.finished).code).toBe(0);
    const all = spans(log);
    expect(all.map((s) => s.number)).toEqual([1, 2]);
    expect(all[0]!.end).toBeLessThanOrEqual(all[1]!.start);
    expect(ticketsIn(sandbox.stateDir, key)).toEqual([]);
  });

  it('a `seq-test run` holder blocks a Python waiter, which prints the same queue line', async () => {
    sandbox = new TestSandbox();
    const key = `ts-holds-${sandbox.marker}`;
    const env = { SEQ_TEST_KEY: key };
    const log = join(sandbox.dir, 'log');
    const release = join(sandbox.dir, 'release');
    const holder = ts(
      [
        '--',
        'bash',
        '-c',
        `echo "S $SEQ_TEST_TICKET $(date +%s%N)" >> ${log}; while [ ! -e ${release} ]; do sleep 0.02; done; echo "E $SEQ_TEST_TICKET $(date +%s%N)" >> ${log}`,
      ],
      env,
    );
    await waitFor(() => existsSync(log), 30_000, 'the TS holder to hold');
    const waiter = py(['--log', log], env);
    await waitFor(() => waiter.output.stdout.includes('TICKET'), 30_000, 'the Python ticket');
    await waitFor(() => waiter.output.stderr.includes('waiting for the lock'), 30_000, 'the queue line');
    expect(waiter.child.exitCode).toBeNull();
    expect(waiter.output.stderr).toMatch(
      new RegExp(
        `^seq-test: waiting for the lock on ${key}: position 2 of 2, held by pid ${holder.child.pid} \\(bash -c .*\\) for \\S+ m?s; waited \\S+ m?s$`,
        'm',
      ),
    );
    writeFileSync(release, '');
    expect((await holder.finished).code).toBe(0);
    const result = await waiter.finished;
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^seq-test: our turn after /m);
    const all = spans(log);
    expect(all.map((s) => s.number)).toEqual([1, 2]);
    expect(all[0]!.end).toBeLessThanOrEqual(all[1]!.start);
  });

  it('a Python holder records its parent like TypeScript does: `status` says when it is re-parented, and `cancel` ends it', async () => {
    sandbox = new TestSandbox();
    const key = `py-parent-${sandbox.marker}`;
    const env = { SEQ_TEST_KEY: key };
    const log = join(sandbox.dir, 'log');
    // sh starts the holder and waits (an npx stand-in); SIGKILLing sh alone re-parents it.
    const shell = sandbox.start(
      ['-c', `"$0" "$@" & wait`, PYTHON, CONTENDER, '--hold-until', join(sandbox.dir, 'never'), '--log', log],
      {
        file: '/bin/sh',
        env,
      },
    );
    await waitFor(() => existsSync(log), 30_000, 'the Python holder to hold');
    const status = () => readStatus({ key, env: sandbox.env(env), withLeftovers: false }).queues[0]?.tickets[0];
    const before = status();
    expect(before).toMatchObject({ impl: 'python', reparented: false, parent: { pid: shell.child.pid, name: 'sh' } });
    shell.child.kill('SIGKILL');
    await shell.exited;
    await waitFor(() => status()?.reparented, 30_000, 'status to see the Python holder re-parented');
    const text = await sandbox.run(['status'], { env });
    expect(text.stdout).toContain(`re-parented: its parent ${shell.child.pid} (sh) is gone`);
    const cancelled = await sandbox.run(['cancel', String(before?.pid)], { env });
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toMatch(
      /^cancelled pid \d+ \(holding: py_contender\): ended by SIGTERM; its ticket is gone$/m,
    );
    expect(ticketsIn(sandbox.stateDir, key)).toEqual([]);
  });

  it('6 contenders alternating languages: FIFO by ticket number, never two at once', async () => {
    sandbox = new TestSandbox();
    const key = `fifo-${sandbox.marker}`;
    const env = { SEQ_TEST_KEY: key };
    const log = join(sandbox.dir, 'log');
    const release = join(sandbox.dir, 'release');
    // A blocker holds first, so that all six are queued before anyone runs.
    const blocker = py(['--hold-until', release, '--quiet'], env);
    await waitFor(() => ticketsIn(sandbox.stateDir, key).length === 1, 30_000, 'the blocker');
    const contenders: { lang: 'ts' | 'py'; started: Started }[] = [];
    for (let i = 0; i < 6; i++) {
      const ms = 50 + 30 * (i % 3);
      const started =
        i % 2 === 0
          ? ts(['--quiet', '--', ...tsJob(log, ms)], env)
          : py(['--quiet', '--log', log, '--', 'sleep', (ms / 1000).toFixed(3)], env);
      contenders.push({ lang: i % 2 === 0 ? 'ts' : 'py', started });
      // Wait for its ticket before starting the next: launch order is then ticket order.
      await waitFor(() => ticketsIn(sandbox.stateDir, key).length === i + 2, 30_000, `ticket of contender ${i}`);
    }
    const order = ticketsIn(sandbox.stateDir, key).map((name) => Number(name.split('-')[0]));
    expect(order).toEqual([1, 2, 3, 4, 5, 6, 7]);
    writeFileSync(release, '');
    expect((await blocker.finished).code).toBe(0);
    const results = await Promise.all(contenders.map((c) => c.started.finished));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0, 0, 0]);
    const all = spans(log);
    expect(all).toHaveLength(6);
    const byStart = [...all].sort((a, b) => a.start - b.start);
    // Start order is ticket order (2..7: ticket 1 was the blocker)...
    expect(byStart.map((s) => s.number)).toEqual([2, 3, 4, 5, 6, 7]);
    // ...which alternates languages, and each one ended before the next started.
    expect(byStart.map((s) => pidLanguage(s, contenders))).toEqual(['ts', 'py', 'ts', 'py', 'ts', 'py']);
    for (let i = 1; i < byStart.length; i++) expect(byStart[i - 1]!.end).toBeLessThanOrEqual(byStart[i]!.start);
    const gaps = byStart.slice(1).map((s, i) => (s.start - byStart[i]!.end) / 1000);
    console.log(`cross-language handoff gaps (ms): ${gaps.map((g) => g.toFixed(1)).join(', ')}`);
    expect(ticketsIn(sandbox.stateDir, key)).toEqual([]);
  });

  for (const victimLang of ['py', 'ts'] as const) {
    const other = victimLang === 'py' ? 'TS' : 'Python';
    it(`a SIGKILLed ${victimLang === 'py' ? 'Python' : 'TS'} holder is detected by a ${other} waiter, its leftover ended`, async () => {
      sandbox = new TestSandbox();
      const key = `killed-${victimLang}-${sandbox.marker}`;
      const env = { SEQ_TEST_KEY: key };
      const log = join(sandbox.dir, 'log');
      const pidFile = join(sandbox.dir, 'leftover.pid');
      // The holder runs a command that stays behind (it carries the holder's token).
      const holdCommand = ['bash', '-c', `echo $$ > ${pidFile}; exec sleep 300`];
      // Without its subreaper helper (which ends its own tree when seq-test dies), a killed `seq-test run`
      // leaves its command running, as a killed Python holder does: the other language's waiter must end it.
      const victim =
        victimLang === 'py'
          ? py(['--quiet', '--', ...holdCommand], env)
          : ts(['--quiet', '--', ...holdCommand], { ...env, SEQ_TEST_NO_SUBREAPER: '1' });
      await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'), 30_000, 'the holder');
      const leftover = Number(readFileSync(pidFile, 'utf8').trim());
      const waiter = victimLang === 'py' ? ts(['--', ...tsJob(log, 0)], env) : py(['--log', log], env);
      await waitFor(() => ticketsIn(sandbox.stateDir, key).length === 2, 30_000, 'the waiter ticket');
      await new Promise((r) => setTimeout(r, 200));
      expect(existsSync(log)).toBe(false);
      const killedAt = Date.now() * 1000;
      victim.child.kill('SIGKILL');
      const result = await waiter.finished;
      expect(result.code).toBe(0);
      const detectionMs = (spans(log)[0]!.start - killedAt) / 1000;
      console.log(`SIGKILLed ${victimLang} holder -> ${other} waiter started after ${detectionMs.toFixed(0)} ms`);
      // Promptly, not a figure (bench/ measures it): generous for a loaded 2-core machine.
      expect(detectionMs).toBeLessThan(30_000);
      expect(result.stderr).toMatch(/a run that died left \d+ process\(es\) behind; ended: .*sleep 300/);
      await waitFor(() => !isAliveProc(leftover), 10_000, "the dead run's leftover to be gone");
      expect(ticketsIn(sandbox.stateDir, key)).toEqual([]);
    });
  }
});

describe.skipIf(NO_PYTHON)('conformance: re-entrancy across languages', () => {
  let sandbox: TestSandbox;
  beforeAll(() => requireInterpreter(PYTHON));
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  const INNER_TEST = `
import json, os, subprocess, sys

def test_calls_seq_test_run():
    out = subprocess.run([os.environ["NODE"], os.environ["CLI"], "run", "--json", "--", "true"],
                         stdout=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert out.returncode == 0
    report = json.loads(out.stdout)
    assert report["lock"]["nested"] is True
    print("INNER_NESTED_OK")
`;

  it('`seq-test run -- pytest` does not deadlock, and a test calling `seq-test run` inside it neither', async () => {
    sandbox = new TestSandbox();
    const root = pytestProject(sandbox, { 'test_inner.py': INNER_TEST });
    // SEQ_TEST_VERBOSE: the plugin prints its lock line only when asked (or when something changed).
    const env = { NODE: process.execPath, CLI, PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1', SEQ_TEST_VERBOSE: '1' };
    const result = await sandbox.run(
      ['run', '--timeout', '240', '--', PYTHON, '-m', 'pytest', '-s', '-p', 'no:cacheprovider'],
      {
        cwd: root,
        env,
      },
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^seq-test: lock on .*: nested inside the seq-test run that started pytest/m);
    expect(result.stdout).toContain('INNER_NESTED_OK');
    expect(ticketsIn(sandbox.stateDir, root)).toEqual([]);
  });

  it('plain pytest holding the lock: a test calling `seq-test run` runs at once while a top-level run waits', async () => {
    sandbox = new TestSandbox();
    const release = join(sandbox.dir, 'release');
    const root = pytestProject(sandbox, {
      'test_inner.py': `${INNER_TEST}
import time
def test_wait_for_release():
    while not os.path.exists(${JSON.stringify(release)}):
        time.sleep(0.02)
`,
    });
    const env = { NODE: process.execPath, CLI, PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1' };
    const pytest = sandbox.start(['-m', 'pytest', '-s', '-p', 'no:cacheprovider'], { file: PYTHON, cwd: root, env });
    await waitFor(() => pytest.output.stdout.includes('INNER_NESTED_OK'), 120_000, 'the nested seq-test run');
    // The top-level queue: pytest holds; a `seq-test run` from outside waits behind it.
    const outside = sandbox.start(['run', '--', 'true'], { cwd: root });
    await waitFor(() => outside.output.stderr.includes('waiting for the lock'), 30_000, 'the outside run to wait');
    expect(outside.output.stderr).toMatch(
      new RegExp(`held by pid ${pytest.child.pid} \\(pytest -s -p no:cacheprovider\\)`),
    );
    writeFileSync(release, '');
    const result = await pytest.finished;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect((await outside.finished).code).toBe(0);
  });
});

describe.skipIf(NO_PYTHON)('conformance: both implementations compute the same names and text', () => {
  let sandbox: TestSandbox;
  beforeAll(() => requireInterpreter(PYTHON));
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  it('key dir names, default keys, project-config keys and the queue line agree', () => {
    sandbox = new TestSandbox();
    const repo = join(sandbox.dir, 'repo');
    const deep = join(repo, 'a', 'b');
    mkdirSync(deep, { recursive: true });
    mkdirSync(join(repo, '.git'));
    const plain = join(sandbox.dir, 'plain');
    mkdirSync(plain);
    const configured = join(sandbox.dir, 'configured');
    mkdirSync(join(configured, 'sub'), { recursive: true });
    mkdirSync(join(configured, '.git'));
    writeFileSync(join(configured, 'package.json'), JSON.stringify({ seqTest: { key: 'shared-lane', slots: 2 } }));
    const keys = ['/home/me/project', '/tmp/café ü', 'k', 'shared-gpu', '/x/日本語'];
    const now = 1_800_000_000_000;
    const entry = (command: string, startedAt: number | null, pid = 4242) =>
      ({ owner: { pid, start: 1 }, ticket: { command, startedAt } }) as unknown as QueueEntry;
    const waits = [
      { key: '/p', position: 2, queueLength: 2, ahead: [entry('npm test', now - 3100)], waitedMs: 800, nested: false },
      { key: 'k', position: 3, queueLength: 5, ahead: [entry('x'.repeat(90), null)], waitedMs: 61_000, nested: true },
      { key: 'k', position: 1, queueLength: 1, ahead: [], waitedMs: 0.4, nested: false },
      { key: 'k', position: 2, queueLength: 2, ahead: [entry('', now - 7_300_000)], waitedMs: 12.5, nested: false },
    ];
    const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(TEMPLATES)})
import seq_test_lock as L
spec = json.load(sys.stdin)
class E:
    def __init__(self, d):
        self.pid = d["pid"]; self.command = d["command"]; self.started_at = d["startedAt"]
out = {
    "dirs": [L.key_dir_name(k) for k in spec["keys"]],
    "defaults": [L.project_key(cwd=c, env={}) for c in spec["cwds"]],
    "resolved": [L.resolve_lock_settings(cwd=c, env={})[0] for c in spec["cwds"]],
    "waits": [L.describe_wait(w["key"], w["position"], w["queueLength"], [E(a) for a in w["ahead"]], w["waitedMs"], w["nested"], now_ms=spec["now"]) for w in spec["waits"]],
}
print(json.dumps(out))
`;
    const cwds = [deep, plain, join(configured, 'sub')];
    const spec = {
      keys,
      cwds,
      now,
      waits: waits.map((w) => ({
        ...w,
        ahead: w.ahead.map((a) => ({ pid: a.owner.pid, command: a.ticket?.command, startedAt: a.ticket?.startedAt })),
      })),
    };
    const out = JSON.parse(
      execFileSync(PYTHON, ['-c', script], { input: JSON.stringify(spec), env: sandbox.env(), encoding: 'utf8' }),
    );
    expect(out.dirs).toEqual(keys.map((k) => keyDirName(k)));
    expect(out.defaults).toEqual(cwds.map((c) => projectKey({ cwd: c, env: {} })));
    expect(out.resolved).toEqual(cwds.map((c) => loadProjectConfig(c)?.config.key ?? projectKey({ cwd: c, env: {} })));
    expect(out.resolved[2]).toBe('shared-lane');
    expect(out.waits).toEqual(waits.map((w) => describeWait(w, now)));
  });
});

function pidLanguage(span: Span, contenders: { lang: 'ts' | 'py'; started: Started }[]): 'ts' | 'py' {
  const pid = Number(span.ticket.split('-')[1]!.split('.')[0]);
  const match = contenders.find((c) => c.started.child.pid === pid);
  if (!match) throw new Error(`no contender owns ticket ${span.ticket}`);
  return match.lang;
}

function isAliveProc(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
