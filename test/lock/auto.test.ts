import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fingerprintOf, keyDirName } from '@seq-test/core/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { LEAVE_BEHIND, seedPeak } from '../support/lingering.js';
import { isAlive, TestSandbox, waitFor } from '../support/processes.js';

/**
 * `--slots auto` end to end: real `seq-test run` processes whose commands allocate real memory, a
 * `--memory-budget` standing in for a small machine (the same rule as with MemAvailable, but independent
 * of what else this machine runs), and the history they learn from.
 */

// Allocates (and touches) the MiB in ./size, logs "S/E <ticket> <ns>" around its life, lives ./ms ms or
// until ./release exists when ./ms says "gate".
const GROW = `
const fs = require('node:fs');
const log = (k) => fs.appendFileSync('stamps.log', k + ' ' + process.env.SEQ_TEST_TICKET + ' ' + process.hrtime.bigint() + '\\n');
log('S');
const mib = Number(fs.readFileSync('size', 'utf8'));
const data = Buffer.alloc(mib * 1024 * 1024, 1);
const ms = fs.readFileSync('ms', 'utf8').trim();
const end = () => { log('E'); process.exit(data[0] === 1 ? 0 : 1); };
if (ms === 'gate') setInterval(() => fs.existsSync('release') && end(), 20);
else setTimeout(end, Number(ms));
`;

interface Span {
  ticket: string;
  start: bigint;
  end: bigint;
}

function spans(log: string): Span[] {
  const byTicket = new Map<string, Partial<Span>>();
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [kind, ticket, ns] = line.split(' ') as [string, string, string];
    const span = byTicket.get(ticket) ?? { ticket };
    if (kind === 'S') span.start = BigInt(ns);
    else span.end = BigInt(ns);
    byTicket.set(ticket, span);
  }
  return [...byTicket.values()] as Span[];
}

function maxOverlap(all: Span[]): number {
  const events = all.flatMap((s) => [
    [s.start, 1],
    [s.end, -1],
  ]) as [bigint, number][];
  events.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let open = 0;
  let max = 0;
  for (const [, delta] of events) {
    open += delta;
    max = Math.max(max, open);
  }
  return max;
}

describe('--slots auto', () => {
  let sandbox: TestSandbox;
  afterEach(() => {
    expect(sandbox.cleanup()).toBe(0);
  });

  function project(size: number, ms: number | 'gate'): { cwd: string; key: string; command: string[] } {
    const cwd = join(sandbox.dir, 'project');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, 'grow.cjs'), GROW);
    writeFileSync(join(cwd, 'size'), String(size));
    writeFileSync(join(cwd, 'ms'), String(ms));
    return { cwd, key: `auto-${sandbox.marker}`, command: ['node', 'grow.cjs'] };
  }

  const historyDir = (key: string) => join(sandbox.stateDir, keyDirName(key), 'history');

  it('learns a command’s peak, then runs as many at once as the budget allows, first in first out', async () => {
    sandbox = new TestSandbox();
    const { cwd, key, command } = project(60, 300);
    const run = (budget: string) =>
      sandbox.start(
        ['run', '--key', key, '--slots', 'auto', '--max-slots', '4', '--memory-budget', budget, '--', ...command],
        { cwd },
      );
    // Unknown command: the first runs alone (three queued), and each records its peak.
    let results = await Promise.all([run('4G'), run('4G'), run('4G')].map((r) => r.finished));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    // Off a terminal the wait line is printed once, with the first reason (the queue ahead, or no history).
    expect(results.map((r) => r.stderr).join('')).toMatch(/first in, first out|no memory history for this command yet/);
    const learning = spans(join(cwd, 'stamps.log')).sort((a, b) => (a.start < b.start ? -1 : 1));
    for (const other of learning.slice(1)) expect(other.start).toBeGreaterThan((learning[0] as Span).end);
    const files = readdirSync(historyDir(key));
    expect(files).toEqual([`${fingerprintOf({ argv: command, cwd })}.json`]);
    const history = JSON.parse(readFileSync(join(historyDir(key), files[0] as string), 'utf8'));
    expect(history.runs).toHaveLength(3);
    for (const r of history.runs) {
      // The tree is seq-test itself, the subreaper helper and node with 60 MiB touched.
      expect(r.peakBytes).toBeGreaterThan(60 * 1024 ** 2);
      expect(r.peakBytes).toBeLessThan(400 * 1024 ** 2);
      expect(r.measure).toBe('pss');
    }
    // Known now, and a budget with room for all: they overlap.
    writeFileSync(join(cwd, 'stamps.log'), '');
    writeFileSync(join(cwd, 'ms'), '1500');
    results = await Promise.all([run('8G'), run('8G'), run('8G')].map((r) => r.finished));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    expect(maxOverlap(spans(join(cwd, 'stamps.log')))).toBeGreaterThanOrEqual(2);
    // A budget with room for one: never two at once, in ticket order.
    writeFileSync(join(cwd, 'stamps.log'), '');
    writeFileSync(join(cwd, 'ms'), '300');
    const tight = [run('300M'), run('300M'), run('300M')];
    results = await Promise.all(tight.map((r) => r.finished));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    const all = spans(join(cwd, 'stamps.log'));
    expect(maxOverlap(all)).toBe(1);
    const byStart = [...all].sort((a, b) => (a.start < b.start ? -1 : 1)).map((s) => s.ticket);
    expect(byStart).toEqual([...byStart].sort());
  });

  it('four runs of a new command queued at once: the first runs alone, then the others learn its peak and two at a time fit the budget', async () => {
    sandbox = new TestSandbox();
    // ~200 MiB touched: a tree of ~235 MiB Pss, predicted ~410 MiB from one run (+75 %). A budget of 1100M
    // (reserve 128 MiB) has room for two such runs (2 × 410 + 128 ≤ 1100) and not three (3 × 410 + 128 >
    // 1100), with the tree anywhere from 190 to 275 MiB (−19 % to +17 %).
    const { cwd, key, command } = project(200, 1500);
    const runs = [0, 1, 2, 3].map(() =>
      sandbox.start(
        ['run', '--key', key, '--slots', 'auto', '--max-slots', '4', '--memory-budget', '1100M', '--', ...command],
        { cwd },
      ),
    );
    const results = await Promise.all(runs.map((r) => r.finished));
    expect(results.map((r) => [r.code, r.stderr])).toEqual(results.map((r) => [0, r.stderr]));
    const all = spans(join(cwd, 'stamps.log')).sort((a, b) => (a.start < b.start ? -1 : 1));
    expect(all).toHaveLength(4);
    // The first ran alone: nothing was known about its command.
    const [first, ...rest] = all as [Span, ...Span[]];
    for (const other of rest) expect(other.start).toBeGreaterThan(first.end);
    // Its peak recorded, the three queued behind it learned their prediction while they waited (rather
    // than each running alone as a command seen for the first time): two at a time, never three.
    expect(maxOverlap(rest)).toBe(2);
    const history = JSON.parse(
      readFileSync(join(historyDir(key), `${fingerprintOf({ argv: command, cwd })}.json`), 'utf8'),
    );
    expect(history.runs).toHaveLength(4);
  });

  it('--verbose says why each run was admitted: alone, or the memory line it fitted', async () => {
    sandbox = new TestSandbox();
    const { cwd, key, command } = project(30, 1500);
    const run = () =>
      sandbox.start(['run', '--verbose', '--key', key, '--slots', 'auto', '--memory-budget', '4G', '--', ...command], {
        cwd,
      });
    const learning = await run().finished;
    expect(learning.stderr).toContain('seq-test: admitted (--slots auto): nothing else holds\n');
    const both = await Promise.all([run(), run()].map((r) => r.finished));
    expect(both.map((r) => r.code)).toEqual([0, 0]);
    const lines = both.flatMap((r) => r.stderr.split('\n').filter((l) => l.includes('admitted')));
    expect(lines).toHaveLength(2);
    expect(lines).toContain('seq-test: admitted (--slots auto): nothing else holds');
    expect(lines.join('\n')).toMatch(
      /seq-test: admitted \(--slots auto\): needs ~\d+(\.\d)? MiB, [\d.]+ GiB available above the reserve \(holders still expected to grow by/,
    );
  });

  it('a holder whose command ended, its leftover lingering, is charged no growth: the head is admitted during the linger', async () => {
    sandbox = new TestSandbox();
    const { cwd, key } = project(10, 0);
    writeFileSync(join(cwd, 'leave.cjs'), LEAVE_BEHIND);
    const budget = ['--slots', 'auto', '--memory-budget', '500M'];
    expect((await sandbox.run(['run', '--key', key, ...budget, '--', 'true'], { cwd })).code).toBe(0); // the dirs
    // Both commands are known to peak at 200 MiB (predicted 230 MiB). With a 500 MiB budget and the 128 MiB
    // reserve, the second fits beside the first only once the first's tree is small: after its command.
    const real = realpathSync(cwd);
    for (const argv of [
      ['node', 'leave.cjs'],
      ['node', 'grow.cjs'],
    ])
      seedPeak(join(sandbox.stateDir, keyDirName(key)), { argv, cwd: real }, 200 * 1024 ** 2);
    // A long linger: the first holds until its leftover ends (the gate), or 120 s.
    const first = sandbox.start(['run', '--key', key, ...budget, '--linger', '120', '--', 'node', 'leave.cjs'], {
      cwd,
    });
    await waitFor(() => existsSync(join(cwd, 'stamps.log')), 30_000, 'the first run to start its command');
    const second = sandbox.start(['run', '--key', key, ...budget, '--', 'node', 'grow.cjs'], { cwd });
    try {
      let done = false;
      void second.finished.then(() => {
        done = true;
      });
      // Before the fix the second waited for the first to leave, that is for the gate: this bound fails it.
      await waitFor(() => done, 60_000, 'the second run to be admitted and finish while the first lingers');
      expect((await second.finished).code, (await second.finished).stderr).toBe(0);
      expect(isAlive(first.child.pid as number)).toBe(true);
      // The budget did bind while the first's command ran: the second started only after it ended.
      const [a, b] = spans(join(cwd, 'stamps.log')).sort((x, y) => (x.start < y.start ? -1 : 1));
      expect(a?.end).toBeDefined();
      expect((b as Span).start > (a as Span).end).toBe(true);
    } finally {
      writeFileSync(join(cwd, 'release'), '');
      await Promise.all([first.finished, second.finished]);
    }
    expect((await first.finished).code, (await first.finished).stderr).toBe(0);
  });

  it('the ticket says the command ended only when no retry can follow (--retry), and never with --wait-all', async () => {
    sandbox = new TestSandbox();
    const { cwd, key } = project(10, 0);
    // Each attempt leaves a process behind until ./gate-<n> exists; the first fails, the second succeeds.
    writeFileSync(
      join(cwd, 'attempts.cjs'),
      `const fs = require('node:fs');
const { spawn } = require('node:child_process');
const n = fs.existsSync('attempt-1') ? 2 : 1;
fs.writeFileSync('attempt-' + n, '');
spawn('/bin/sh', ['-c', 'while [ ! -e gate-' + n + ' ]; do sleep 0.05; done'], { stdio: 'ignore' }).unref();
process.exit(n === 1 ? 1 : 0);`,
    );
    const tickets = join(sandbox.stateDir, keyDirName(key), 'tickets');
    const endedAt = () => {
      const names = existsSync(tickets) ? readdirSync(tickets).filter((n) => n.endsWith('.json')) : [];
      if (names.length !== 1) return undefined;
      return JSON.parse(readFileSync(join(tickets, names[0] as string), 'utf8')).admission.endedAt as number | null;
    };
    const run = sandbox.start(
      [
        'run',
        '--key',
        key,
        '--slots',
        'auto',
        '--retry',
        '1',
        '--linger',
        '120',
        '--verbose',
        '--',
        'node',
        'attempts.cjs',
      ],
      { cwd },
    );
    try {
      // The first attempt's command ended (narrated after the ticket would have been written), its leftover
      // holds the attempt open: a retry may follow, so the run may still grow to its peak.
      await waitFor(() => run.output.stderr.includes('main process ended (exit 1)'), 30_000, 'the first attempt');
      expect(endedAt()).toBeNull();
      writeFileSync(join(cwd, 'gate-1'), '');
      // The last attempt's command ended: now it says so.
      await waitFor(() => run.output.stderr.includes('main process ended (exit 0)'), 30_000, 'the second attempt');
      const at = await waitFor(() => endedAt() || undefined, 30_000, 'endedAt in the ticket');
      expect(at).toBeGreaterThan(Date.now() - 600_000);
      expect(at).toBeLessThanOrEqual(Date.now());
    } finally {
      writeFileSync(join(cwd, 'gate-1'), '');
      writeFileSync(join(cwd, 'gate-2'), '');
      await run.finished;
    }
    expect((await run.finished).code).toBe(0);
    // --wait-all: what the command left running is work the user waits for, and may still grow.
    for (const file of ['attempt-2', 'gate-2']) rmSync(join(cwd, file));
    const waitAll = sandbox.start(
      ['run', '--key', key, '--slots', 'auto', '--wait-all', '--verbose', '--', 'node', 'attempts.cjs'],
      { cwd },
    );
    try {
      await waitFor(() => waitAll.output.stderr.includes('main process ended (exit 0)'), 30_000, 'the command');
      expect(endedAt()).toBeNull();
    } finally {
      writeFileSync(join(cwd, 'gate-2'), '');
      await waitAll.finished;
    }
    expect((await waitAll.finished).code).toBe(0);
  });

  it('status shows each holder’s prediction and live memory, and why the head waits', async () => {
    sandbox = new TestSandbox();
    const { cwd, key, command } = project(40, 600);
    const args = ['run', '--key', key, '--slots', 'auto', '--memory-budget', '256M', '--', ...command];
    expect((await sandbox.run(args, { cwd })).code).toBe(0);
    writeFileSync(join(cwd, 'ms'), 'gate');
    const first = sandbox.start(args, { cwd });
    await waitFor(
      () => existsSync(join(cwd, 'stamps.log')) && readFileSync(join(cwd, 'stamps.log'), 'utf8').split('\n').length > 3,
      30_000,
      'the first run to start',
    );
    const second = sandbox.start(args, { cwd });
    try {
      // The status command is a process of its own: ask until it shows the second run waiting (bounded).
      let text = '';
      for (let i = 0; i < 100 && !text.includes('waits:'); i++) {
        text = (await sandbox.run(['status', '--key', key], { cwd })).stdout;
      }
      expect(text).toMatch(/holding .*\n.*\n\s+memory: predicted peak ~\d+ MiB, now \d+ MiB Pss/);
      expect(text).toMatch(
        /#2 waiting .*\n.*\n\s+memory: predicted peak ~\d+ MiB, waits: needs ~\d+ MiB, .* available above the reserve/,
      );
      const json = JSON.parse((await sandbox.run(['status', '--key', key, '--json'], { cwd })).stdout);
      const [holder, waiter] = json.queues[0].tickets;
      expect(holder.memory).toMatchObject({ mode: 'auto', measure: 'pss' });
      expect(holder.memory.liveBytes).toBeGreaterThan(40 * 1024 ** 2);
      expect(waiter.memory.waitReason).toContain('needs ~');
    } finally {
      writeFileSync(join(cwd, 'release'), '');
      await Promise.all([first.finished, second.finished]);
    }
    expect((await first.finished).code).toBe(0);
    expect((await second.finished).code).toBe(0);
  });

  it('a run that is killed, interrupted or timed out records nothing', async () => {
    sandbox = new TestSandbox();
    const { cwd, key, command } = project(20, 'gate');
    const args = ['run', '--key', key, '--slots', 'auto', '--', ...command];
    expect(
      (await sandbox.run(['run', '--key', key, '--slots', 'auto', '--timeout', '0.5', '--', ...command], { cwd })).code,
    ).toBe(124);
    const interrupted = sandbox.start(args, { cwd });
    await waitFor(
      () => existsSync(join(cwd, 'stamps.log')) && readFileSync(join(cwd, 'stamps.log'), 'utf8').split('\n').length > 2,
      30_000,
      'the run to start',
    );
    interrupted.child.kill('SIGINT');
    expect((await interrupted.finished).code).toBe(130);
    const killed = sandbox.start(args, { cwd });
    await waitFor(
      () => readFileSync(join(cwd, 'stamps.log'), 'utf8').split('\n').length > 3,
      30_000,
      'the run to start',
    );
    killed.child.kill('SIGKILL');
    await killed.exited;
    // The SIGKILLed run's command is a leftover now: the next run of the key reaps it (and records its own).
    writeFileSync(join(cwd, 'release'), '');
    expect(existsSync(historyDir(key)) ? readdirSync(historyDir(key)) : []).toEqual([]);
    expect((await sandbox.run(args, { cwd })).code).toBe(0);
    expect(readdirSync(historyDir(key))).toHaveLength(1);
  });

  it('a corrupt, hostile or foreign-version history is reported and the run treated as unknown', async () => {
    sandbox = new TestSandbox();
    const { cwd, key, command } = project(10, 0);
    const file = join(historyDir(key), `${fingerprintOf({ argv: command, cwd })}.json`);
    const args = ['run', '--key', key, '--slots', 'auto', '--', ...command];
    expect((await sandbox.run(args, { cwd })).code).toBe(0); // creates the queue and history dirs
    for (const [content, message] of [
      ['{"v":2,"runs":', 'not valid JSON; ignored'],
      ['{"v":7,"fingerprint":"x","runs":[]}', 'history of protocol version 7 (we read 2); ignored'],
      [
        JSON.stringify({
          v: 2,
          fingerprint: fingerprintOf({ argv: command, cwd }),
          runs: [{ peakBytes: 1e308, durationMs: 'x', endedAt: 1, measure: 'pss' }],
        }),
        '1 invalid run entry ignored',
      ],
    ] as const) {
      writeFileSync(file, content, { mode: 0o600 });
      const result = await sandbox.run(args, { cwd });
      expect(result.code).toBe(0);
      expect(result.stderr).toContain(`seq-test: warning: ${file}: ${message}`);
    }
  });

  it('--on-pressure pause: the youngest holder stops its tree while memory is short and continues once alone', async () => {
    sandbox = new TestSandbox();
    const { cwd, key } = project(10, 0);
    // Marks "S <run> <pid>" once started, allocates and touches $MIB MiB, marks "G <run> <pid>", then lives
    // until ./end-<run> exists.
    writeFileSync(
      join(cwd, 'pressure.cjs'),
      `const fs = require('node:fs');
const run = process.env.RUN;
const mark = (kind) => fs.appendFileSync('marks.log', kind + ' ' + run + ' ' + process.pid + '\\n');
mark('S');
const data = Buffer.alloc(Number(process.env.MIB) * 1024 * 1024, 1);
mark('G');
setInterval(() => fs.existsSync('end-' + run) && process.exit(data[0] === 1 ? 0 : 1), 20);`,
    );
    const marks = () =>
      existsSync(join(cwd, 'marks.log'))
        ? readFileSync(join(cwd, 'marks.log'), 'utf8')
            .trim()
            .split('\n')
            .map((line) => line.split(' '))
        : [];
    const pidOf = (kind: string, run: string) => Number(marks().find(([k, r]) => k === kind && r === run)?.[2]);
    const state = (pid: number) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      } catch {
        return '';
      }
    };
    // A budget of 600M keeps the default reserve, 128 MiB: the youngest pauses when the holders' trees pass
    // 472 MiB, and memory "returns" only when they are down to 344 MiB.
    const args = ['run', '--key', key, '--slots', 'auto', '--memory-budget', '600M', '--on-pressure', 'pause'];
    const start = (run: string, mib: number) =>
      sandbox.start([...args, '--', 'node', 'pressure.cjs'], { cwd, env: { RUN: run, MIB: String(mib) } });
    writeFileSync(join(cwd, 'end-learn'), '');
    expect((await start('learn', 10).finished).code).toBe(0); // learns a small peak
    // The older run stays small: when it ends it frees less than a reserve, so only its leaving the queue can
    // continue the younger one. (With both growing late, the younger could be paused before it had grown,
    // and the older's end alone then freed enough: "memory returned" or "the only run left" by timing.)
    const older = start('older', 10);
    await waitFor(() => pidOf('G', 'older'), 60_000, 'the older run to start');
    // Admitted next to it (small as far as the history knows), then grows far past the budget.
    const younger = start('younger', 500);
    const youngerPid = await waitFor(() => pidOf('S', 'younger'), 60_000, 'the younger run to start');
    await waitFor(
      () => state(youngerPid) === 'T' && /pausing this run/.test(younger.output.stderr),
      60_000,
      'the younger run to be paused',
    );
    expect(state(pidOf('S', 'older'))).not.toBe('T');
    writeFileSync(join(cwd, 'end-older'), '');
    expect((await older.finished).code).toBe(0);
    await waitFor(() => /continuing/.test(younger.output.stderr), 60_000, 'the younger run to continue');
    expect(state(youngerPid)).not.toBe('T');
    writeFileSync(join(cwd, 'end-younger'), '');
    const [first, second] = [await older.finished, await younger.finished];
    expect(second.code, second.stderr).toBe(0);
    // Paused once, for memory, and continued once, because it was the only run left.
    expect(second.stderr.match(/warning: .*/g)).toEqual([
      expect.stringMatching(
        /^warning: memory is short \(\d+ MiB available, reserve 128 MiB\): pausing this run until it returns$/,
      ),
      'warning: the only run left: continuing',
    ]);
    expect(first.stderr).not.toContain('pausing');
  });

  it('"slots": "auto" in the project settings turns auto mode on (a version-2 ticket, a history); exec ignores it', async () => {
    sandbox = new TestSandbox();
    const { cwd, key, command } = project(10, 0);
    writeFileSync(join(cwd, '.seqtestrc.json'), JSON.stringify({ slots: 'auto', maxSlots: 2, memoryBudget: '2G' }));
    const result = await sandbox.run(['run', '--key', key, '--', ...command], { cwd });
    expect(result.code, result.stderr).toBe(0);
    expect(readdirSync(historyDir(key))).toEqual([`${fingerprintOf({ argv: command, cwd })}.json`]);
    expect((await sandbox.run(['exec', '--', ...command], { cwd })).code).toBe(0);
  });

  it.each([
    [['--memory-budget', '-1G'], '--memory-budget expects a size such as 512M or 2G, got "-1G"'],
    [['--memory-budget', 'lots'], '--memory-budget expects a size such as 512M or 2G, got "lots"'],
    [['--memory-budget', '0'], '--memory-budget expects a size such as 512M or 2G, got "0"'],
    [['--max-slots', '0'], '--max-slots expects a whole number of at least 1, got "0"'],
    [['--on-pressure', 'panic'], '--on-pressure expects "wait" or "pause", got "panic"'],
  ])('bad input %j: one line, exit 125, no ticket left', async (extra, message) => {
    sandbox = new TestSandbox();
    const key = `auto-bad-${sandbox.marker}`;
    const result = await sandbox.run(['run', '--key', key, '--slots', 'auto', ...extra, '--', 'true']);
    expect(result.code).toBe(125);
    expect(result.stderr).toBe(`seq-test: error: ${message}\n`);
    expect(
      existsSync(join(sandbox.stateDir, keyDirName(key), 'tickets'))
        ? readdirSync(join(sandbox.stateDir, keyDirName(key), 'tickets'))
        : [],
    ).toEqual([]);
  });

  it('auto-only options without --slots auto are an error', async () => {
    sandbox = new TestSandbox();
    const result = await sandbox.run(['run', '--slots', '2', '--memory-budget', '1G', '--', 'true']);
    expect(result.code).toBe(125);
    expect(result.stderr).toBe('seq-test: error: --memory-budget only applies with --slots auto\n');
  });
});
