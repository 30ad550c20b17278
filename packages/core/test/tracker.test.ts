import { describe, expect, it } from 'vitest';
import type { EnvRead, PidCounter, ProcessInfo, ProcessTable } from '../src/proc/index.js';
import { RunTracker } from '../src/tracker.js';

/** An in-memory process table: the ownership rules are tested without touching real processes. */
class FakeTable implements ProcessTable {
  readonly processes = new Map<number, ProcessInfo>();
  readonly env = new Map<number, Record<string, string>>();
  envReads = 0;
  lists = 0;
  /** Children as the kernel would list them (from ppid), unless a test overrides a list. */
  readonly childLists = new Map<number, number[]>();
  listsChildren = true;

  add(info: Partial<ProcessInfo> & { pid: number }, env: Record<string, string> = {}): ProcessInfo {
    const full: ProcessInfo = {
      ppid: 1,
      pgid: info.pid,
      sid: info.pid,
      start: 5000,
      state: 'S',
      rssBytes: 1000,
      comm: 'sleep',
      ...info,
    };
    this.processes.set(full.pid, full);
    this.env.set(full.pid, env);
    return full;
  }
  remove(pid: number): void {
    this.processes.delete(pid);
  }
  /** What pidCounter() answers (undefined: the platform does not tell). */
  counter: PidCounter | undefined;
  listed = 0;
  list(only?: (pid: number) => boolean): ProcessInfo[] {
    this.lists++;
    const all = [...this.processes.values()].filter((p) => !only || only(p.pid));
    this.listed += all.length;
    return all;
  }
  pidCounter(): PidCounter | undefined {
    return this.counter;
  }
  children(pid: number): number[] | undefined {
    if (!this.listsChildren || !this.processes.has(pid)) return undefined;
    return this.childLists.get(pid) ?? [...this.processes.values()].filter((p) => p.ppid === pid).map((p) => p.pid);
  }
  get(pid: number): ProcessInfo | undefined {
    return this.processes.get(pid);
  }
  envValue(pid: number, name: string): string | undefined {
    this.envReads++;
    return this.env.get(pid)?.[name];
  }
  readEnv(pid: number, name: string): EnvRead {
    const env = this.env.get(pid);
    return { value: this.envValue(pid, name), empty: env !== undefined && Object.keys(env).length === 0 };
  }
  commandLine(pid: number): string {
    return this.processes.get(pid)?.comm ?? `pid ${pid}`;
  }
  bootId(): string {
    return 'boot';
  }
}

const TOKEN = '100.4000.abcdef012345';
const ROOT = { pid: 100, start: 4000 };

function setup(withHelper = false, fullSweepEveryMs?: number, counter?: PidCounter) {
  const table = new FakeTable();
  table.counter = counter;
  table.add({ pid: 1, ppid: 0, start: 1, comm: 'init' });
  table.add({ pid: 50, ppid: 1, start: 10, comm: 'bash' }); // the user's shell, older than the run
  table.add({ pid: ROOT.pid, ppid: process.pid, start: ROOT.start, comm: withHelper ? 'seq-test-subrea' : 'sh' });
  const tracker = new RunTracker({
    token: TOKEN,
    sessionId: ROOT.pid,
    root: ROOT,
    helper: withHelper ? ROOT : undefined,
    table,
    fullSweepEveryMs,
  });
  const alive = () =>
    tracker
      .sample()
      .alive.map((p) => p.pid)
      .sort((a, b) => a - b);
  return { table, tracker, alive };
}

describe('RunTracker ownership', () => {
  it('owns the root and its session and process group', () => {
    const { table, alive } = setup();
    table.add({ pid: 101, ppid: 100, sid: 100, pgid: 100 });
    table.add({ pid: 102, ppid: 1, sid: 100, pgid: 102 }); // re-parented, still in the session
    table.add({ pid: 103, ppid: 1, sid: 999, pgid: 100 }); // in the group only
    expect(alive()).toEqual([100, 101, 102, 103]);
  });

  // Issue 13, item 1: once every process of the session has gone, its id (the first process's pid) can be
  // handed out again, and a stranger that gets it and calls setsid leads a session with the same id.
  it('a recycled session id is no evidence: the stranger leading it is not owned', () => {
    const { table, alive } = setup();
    table.add({ pid: 101, ppid: 100, sid: 100, pgid: 100 });
    expect(alive()).toEqual([100, 101]);
    table.remove(100);
    table.remove(101);
    table.add({ pid: 100, ppid: 1, sid: 100, pgid: 100, start: 7000, comm: 'sleep' }); // setsid stranger
    table.add({ pid: 150, ppid: 100, sid: 100, pgid: 100, start: 7001 }); // and its child
    expect(alive()).toEqual([]);
  });

  it('the session stays evidence while a known member witnesses that it never emptied', () => {
    const { table, alive } = setup();
    table.add({ pid: 101, ppid: 100, sid: 100, pgid: 100 });
    expect(alive()).toEqual([100, 101]);
    table.remove(100); // the first process exits; 101 keeps the session alive, so pid 100 cannot be reused
    table.add({ pid: 101, ppid: 1, sid: 100, pgid: 100 });
    table.add({ pid: 102, ppid: 1, sid: 100, pgid: 102, start: 6000 }); // orphaned, no token
    expect(alive()).toEqual([101, 102]);
  });

  it('a zombie first process still holds the session id: it witnesses', () => {
    const { table, alive } = setup();
    table.add({ pid: 100, ppid: process.pid, sid: 100, pgid: 100, start: ROOT.start, state: 'Z' });
    table.add({ pid: 103, ppid: 1, sid: 100, pgid: 100, start: 6000 });
    expect(alive()).toEqual([103]);
  });

  it('owns descendants that left the session, and keeps owning them once re-parented', () => {
    const { table, alive } = setup();
    table.add({ pid: 101, ppid: 100, sid: 100, pgid: 100 });
    table.add({ pid: 110, ppid: 101, sid: 110, pgid: 110 }); // setsid child, no token
    expect(alive()).toContain(110);
    table.remove(101);
    table.add({ pid: 110, ppid: 1, sid: 110, pgid: 110 });
    expect(alive()).toContain(110);
  });

  it('owns a token carrier with no other link to the run', () => {
    const { table, alive } = setup();
    table.add({ pid: 120, ppid: 1, sid: 120 }, { SEQ_TEST_TOKEN: `1.2.ffffff:${TOKEN}` });
    expect(alive()).toContain(120);
  });

  it('never owns a look-alike without a link, nor one with another run token', () => {
    const { table, alive } = setup();
    table.add({ pid: 130, ppid: 1, sid: 130, comm: 'sleep' });
    table.add({ pid: 131, ppid: 1, sid: 131 }, { SEQ_TEST_TOKEN: '7.8.123456' });
    table.add({ pid: 132, ppid: 1, sid: 132 }, { SEQ_TEST_TOKEN: `${TOKEN}0` });
    expect(alive()).toEqual([100]);
  });

  it('never owns anything older than the run, even in its session or with its token', () => {
    const { table, alive } = setup();
    table.add({ pid: 60, ppid: 1, sid: 100, start: 3999 });
    table.add({ pid: 61, ppid: 1, sid: 61, start: 3000 }, { SEQ_TEST_TOKEN: TOKEN });
    expect(alive()).toEqual([100]);
  });

  it('never owns seq-test itself', () => {
    const { table, alive } = setup();
    table.add({ pid: process.pid, ppid: 1, sid: 100, start: 9000 }, { SEQ_TEST_TOKEN: TOKEN });
    expect(alive()).toEqual([100]);
  });

  it('names a process by pid and start time: a recycled pid is a stranger', () => {
    const { table, alive } = setup();
    table.add({ pid: 101, ppid: 100, sid: 100 });
    table.add({ pid: 140, ppid: 101, sid: 140 });
    expect(alive()).toContain(140);
    table.remove(140);
    expect(alive()).not.toContain(140);
    table.add({ pid: 140, ppid: 1, sid: 140, start: 7000 }); // same pid, new process
    expect(alive()).not.toContain(140);
  });

  it('ignores zombies and leaves the helper out of the tree it reports', () => {
    const { table, tracker } = setup(true);
    table.listsChildren = false; // the full sweep
    table.add({ pid: 101, ppid: 100, sid: 100, rssBytes: 3000 });
    table.add({ pid: 102, ppid: 100, sid: 100, state: 'Z', rssBytes: 0 });
    table.add({ pid: 150, ppid: 100, sid: 150, rssBytes: 5000 }); // an orphan the helper adopted, no token
    const sample = tracker.sample();
    expect(sample.alive.map((p) => p.pid).sort()).toEqual([101, 150]);
    expect(sample.rssBytes).toBe(8000);
    expect(
      tracker
        .aliveNow()
        .map((p) => p.pid)
        .sort(),
    ).toEqual([101, 150]);
  });

  it('reads a stranger environment twice, in two sweeps, and then never again', () => {
    const { table, tracker } = setup();
    for (let pid = 200; pid < 220; pid++) table.add({ pid, ppid: 1, sid: pid });
    tracker.sample();
    const first = table.envReads;
    expect(first).toBeGreaterThanOrEqual(20);
    tracker.sample();
    const second = table.envReads;
    expect(second - first).toBe(20);
    tracker.sample();
    tracker.sample();
    expect(table.envReads).toBe(second);
  });

  // A process caught between fork and exec shows its parent's environment, one inside execve an empty one:
  // one read without the token must not make a token carrier a stranger for good.
  it('finds a token carrier whose first read came without the token', () => {
    const { table, alive } = setup();
    table.add({ pid: 170, ppid: 1, sid: 170 }, {}); // read mid-exec: no token yet
    expect(alive()).toEqual([100]);
    table.env.set(170, { SEQ_TEST_TOKEN: TOKEN });
    expect(alive()).toEqual([100, 170]);
  });

  it('calls a sample unsettled while an empty environment (a process inside execve) was read only once', () => {
    const { table, tracker } = setup();
    table.add({ pid: 171, ppid: 1, sid: 171 }, { PATH: '/bin' }); // a stranger: its environment is there
    expect(tracker.sample().unsettled).toBe(false);
    table.add({ pid: 170, ppid: 1, sid: 170 }, {}); // no environment at all, yet
    expect(tracker.sample()).toMatchObject({ alive: [expect.objectContaining({ pid: 100 })], unsettled: true });
    expect(tracker.sample().unsettled).toBe(false); // read twice without the token: a stranger for good
  });

  it('treats an unreadable environment as not ours', () => {
    const { table, alive } = setup();
    table.add({ pid: 160, ppid: 1, sid: 160 });
    table.env.delete(160);
    expect(alive()).toEqual([100]);
  });
});

describe('RunTracker with the subreaper helper: the subtree walk', () => {
  it('finds the run from the helper down without reading the process table or any environment', () => {
    const { table, tracker, alive } = setup(true);
    for (let pid = 200; pid < 260; pid++) table.add({ pid, ppid: 1, sid: pid }); // the rest of the machine
    table.add({ pid: 101, ppid: 100, sid: 100 });
    table.add({ pid: 102, ppid: 101, sid: 102 }); // setsid child
    table.add({ pid: 150, ppid: 100, sid: 150 }); // an orphan the helper adopted (env -i, setsid)
    table.add({ pid: 151, ppid: 150, sid: 150, state: 'Z' });
    expect(alive()).toEqual([101, 102, 150]);
    expect(tracker.sample().full).toBe(false);
    expect(table.lists).toBe(0);
    expect(table.envReads).toBe(0);
  });

  it('takes a listed child only if its own entry names that parent (the pid was not reused in between)', () => {
    const { table, alive } = setup(true);
    table.add({ pid: 101, ppid: 100, sid: 100 });
    table.add({ pid: 170, ppid: 1, sid: 170 }); // a stranger that got the pid of a child that just died
    table.childLists.set(100, [101, 170]);
    expect(alive()).toEqual([101]);
  });

  it('reads the helper list again when a process hands its children over mid-walk', () => {
    const { table, alive } = setup(true);
    table.add({ pid: 101, ppid: 100, sid: 100 });
    table.add({ pid: 102, ppid: 101, sid: 100 });
    // As if 101 exited after the helper's list was read: its child now belongs to the helper.
    const original = table.children.bind(table);
    let helperReads = 0;
    table.children = (pid: number) => {
      if (pid === 100 && ++helperReads === 1) return [101];
      if (pid === 101) {
        table.add({ pid: 101, ppid: 100, sid: 100, state: 'Z' });
        table.add({ pid: 102, ppid: 100, sid: 100 });
        return [];
      }
      return original(pid);
    };
    expect(alive()).toContain(102); // found through the second read of the helper list
  });

  it('finds a token carrier outside the tree with a full sweep, and keeps it in later walks', () => {
    const { table, tracker, alive } = setup(true);
    table.add({ pid: 120, ppid: 1, sid: 120 }, { SEQ_TEST_TOKEN: TOKEN });
    expect(alive()).toEqual([]);
    const full = tracker.sample({ full: true });
    expect(full.full).toBe(true);
    expect(full.alive.map((p) => p.pid)).toEqual([120]);
    expect(alive()).toEqual([120]);
    table.remove(120);
    table.add({ pid: 120, ppid: 1, sid: 120, start: 9999 }); // pid reused by a stranger
    expect(alive()).toEqual([]);
  });

  it('sweeps the whole table when the helper is gone, and every fullSweepEveryMs', () => {
    const gone = setup(true);
    gone.table.add({ pid: 120, ppid: 1, sid: 120 }, { SEQ_TEST_TOKEN: TOKEN });
    gone.table.remove(100);
    expect(gone.tracker.sample().full).toBe(true);
    expect(gone.alive()).toEqual([120]);

    const periodic = setup(true, 0);
    expect(periodic.tracker.sample().full).toBe(true);
    const unsupported = setup(true);
    unsupported.table.listsChildren = false;
    expect(unsupported.tracker.sample().full).toBe(true);
  });
});

describe('RunTracker: looking beyond the subtree reads only processes newer than the pid mark', () => {
  const MAX = 32768;

  it('reads just the pids handed out since tracking began, and finds a token carrier among them', () => {
    const { table, tracker } = setup(true, undefined, { last: 100, max: MAX });
    for (let pid = 2; pid < 100; pid++) if (!table.processes.has(pid)) table.add({ pid, ppid: 1, sid: pid, start: 20 });
    for (let pid = 200; pid < 210; pid++) table.add({ pid, ppid: 1, sid: pid });
    table.add({ pid: 300, ppid: 1, sid: 300 }, { SEQ_TEST_TOKEN: TOKEN });
    table.counter = { last: 300, max: MAX };
    table.listed = 0;
    const sample = tracker.sample({ full: true });
    expect(sample.full).toBe(true);
    expect(sample.alive.map((p) => p.pid)).toEqual([300]);
    expect(table.listed).toBe(11); // 200-209 and 300: nothing older than the mark was read
    expect(table.envReads).toBe(11);
  });

  it('uses the whole table once the counter has gone round past the mark', () => {
    const { table, tracker } = setup(true, undefined, { last: 1000, max: MAX });
    table.add({ pid: 950, ppid: 1, sid: 950 }, { SEQ_TEST_TOKEN: TOKEN }); // a pid below the mark, handed out anew
    table.counter = { last: 900, max: MAX }; // almost a full round...
    tracker.sample();
    table.counter = { last: 1100, max: MAX }; // ...and past the mark
    table.listed = 0;
    expect(tracker.sample({ full: true }).alive.map((p) => p.pid)).toEqual([950]);
    expect(table.listed).toBe(table.processes.size);
  });

  it('once the helper reported its subtree empty, walks and the end check go on without it', () => {
    const { table, tracker } = setup(true, undefined, { last: 100, max: MAX });
    for (let pid = 2; pid < 100; pid++) if (!table.processes.has(pid)) table.add({ pid, ppid: 1, sid: pid, start: 20 });
    table.add({ pid: 120, ppid: 1, sid: 120 }, { SEQ_TEST_TOKEN: TOKEN });
    table.counter = { last: 120, max: MAX };
    expect(tracker.sample({ full: true }).alive.map((p) => p.pid)).toEqual([120]);
    table.remove(ROOT.pid); // the helper exited after its last report
    tracker.markSubtreeEmpty();
    const walk = tracker.sample();
    expect(walk.full).toBe(false);
    expect(walk.alive.map((p) => p.pid)).toEqual([120]);
    table.add({ pid: 130, ppid: 1, sid: 130 }, { SEQ_TEST_TOKEN: TOKEN });
    table.counter = { last: 130, max: MAX };
    table.listed = 0;
    expect(tracker.sample({ full: true }).alive.map((p) => p.pid)).toEqual([120, 130]);
    expect(table.listed).toBeLessThan(40);
  });

  it('without a pid counter, a sweep beyond the subtree reads the whole table', () => {
    const { table, tracker } = setup(true);
    table.add({ pid: 50_000 % MAX, ppid: 1, sid: 1 }, { SEQ_TEST_TOKEN: TOKEN });
    table.listed = 0;
    expect(tracker.sample({ full: true }).alive).toHaveLength(1);
    expect(table.listed).toBe(table.processes.size);
  });
});
