import { readlinkSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, type ProcessIdentity, signalIdentity } from './identity.js';
import { inStateDirScope, STATE_DIR_ENV, type StateDirScope, stateDirScope } from './lock/state-dir.js';
import { checkOptions, END_OPTION_RULES } from './options.js';
import { type EnvRead, isGone, type ProcessInfo, type ProcessTable, processTable } from './proc/index.js';
import { parseChain, parseToken, type RunToken, TOKEN_ENV } from './token.js';

/**
 * Which processes belong to a run, and how they are ended: the one place for both (docs/process-tree.md,
 * "Where each rule lives"). The live tracker of `seq-test run` (tracker.ts) applies the same rules
 * incrementally; the lock (dead holders), `status`, `reap`, Jest and Vitest ask here.
 */

/** The one key format for a process's identity in sets and maps: "pid:start". */
export function identityKey(p: ProcessIdentity): string {
  return `${p.pid}:${p.start}`;
}

export interface RunProcess extends ProcessIdentity {
  command: string;
  rssBytes: number;
  /** The run token that makes it ours. */
  token: string;
}

/** A process seq-test signalled, with the last signal sent (null for a dry run). */
export type EndedProcess<T extends RunProcess = RunProcess> = T & { signal: NodeJS.Signals | null };

export interface RunQuery {
  /** The run's tokens: a process whose SEQ_TEST_TOKEN chain names one of them is the run's. */
  tokens: Iterable<string>;
  /**
   * The run's owner: its descendants are the run's too, and nothing started before it is (a pid reused
   * by an older process cannot carry a token of ours by accident).
   */
  root?: ProcessIdentity | undefined;
  /** Identity keys (identityKey) of processes to leave out. */
  exclude?: ReadonlySet<string> | undefined;
  table?: ProcessTable;
}

/**
 * The live processes of a run: the root's descendants and every process carrying one of its tokens
 * (so setsid and double-forked escapees are found too), this process, zombies and `exclude` left out.
 * Limit: a process that clears its environment (`env -i`) and leaves the root's tree is not found.
 * Blocks SETTLE_MS when an environment read empty (see below): it serves exit hooks too.
 */
export function runProcesses(query: RunQuery): RunProcess[] {
  const tokens = new Set(query.tokens);
  const first = tokens.values().next().value;
  if (first === undefined) return [];
  const table = query.table ?? processTable();
  const all = table.list().filter((info) => !isGone(info) && info.pid !== process.pid);
  const found = new Map<number, RunProcess>();
  const take = (info: ProcessInfo, token: string) => {
    if (!found.has(info.pid) && !query.exclude?.has(identityKey(info)))
      found.set(info.pid, describe(table, info, token));
  };
  const root = query.root;
  if (root) for (const info of descendantsOf(root, table)) take(info, first);
  const tokenOf = (read: EnvRead) => parseChain(read.value).find((t) => tokens.has(t.value));
  // A process that inherits a token starts after the token's owner: older ones with an empty environment
  // (kernel threads, a container's init) are not in doubt.
  const owners = [...tokens].map((t) => parseToken(t)?.owner.start ?? 0);
  const youngFrom = Math.min(...owners);
  const unsettled: ProcessInfo[] = [];
  for (const info of all) {
    if (found.has(info.pid) || (root && info.start < root.start)) continue;
    const read = readEnv(table, info.pid);
    const token = tokenOf(read);
    if (token) take(info, token.value);
    else if (read.empty && info.start >= youngFrom && !isKernelThread(info)) unsettled.push(info);
  }
  // One empty read is not proof: a process inside execve shows no environment for a moment (a run's
  // leftover caught so would escape the reaping at the end of a run). Those are read once more, a moment
  // later; without such a read (the usual case) nothing waits.
  if (unsettled.length > 0) {
    sleepSync(SETTLE_MS);
    for (const info of unsettled) {
      const now = table.get(info.pid);
      if (isGone(now) || now?.start !== info.start) continue;
      const token = tokenOf(readEnv(table, info.pid));
      if (token) take(info, token.value);
    }
  }
  return [...found.values()];
}

/**
 * How long before an empty environment is read again: an empty read lasts as long as an execve (well under
 * a millisecond unless the machine is starved). The runner's end check (runner/sampling.ts) and
 * seq_subprocess._wait_tree wait as long.
 */
export const SETTLE_MS = 20;

function readEnv(table: ProcessTable, pid: number): EnvRead {
  return table.readEnv?.(pid, TOKEN_ENV) ?? { value: table.envValue(pid, TOKEN_ENV), empty: false };
}

/** Linux kernel threads (children of kthreadd, pid 2) have no environment at all, ever. */
function isKernelThread(info: ProcessInfo): boolean {
  return process.platform === 'linux' && (info.pid === 2 || info.ppid === 2);
}

/**
 * When a session or process group id is evidence that a process belongs to the run (docs/process-tree.md,
 * "The ownership test"). The run's first process leads session and group G (its pid). The kernel
 * never hands out a pid that is still some session's or group's id, so G stays the run's for as long as
 * it is never empty; once it has emptied, the pid can be reused, and a stranger given it that calls setsid
 * leads a new G. So G counts only while a process already known to be the run's (by pid and start time,
 * from an earlier look: the first process itself to begin with) is still in it, which shows that G has not
 * been empty since the run began. A zombie still holds its ids: it counts as a witness.
 */
export function groupWitnessed(
  group: number,
  known: Iterable<ProcessIdentity>,
  lookup: (pid: number) => ProcessInfo | undefined,
): boolean {
  for (const p of known) {
    const info = lookup(p.pid);
    if (info?.start === p.start && (info.sid === group || info.pgid === group)) return true;
  }
  return false;
}

/**
 * The live descendants of `root` (none older than it: an older process under a reused pid is not its
 * child). Linux reads the children lists from `root` down (a few small reads); elsewhere, or without them,
 * one sweep of the table.
 */
export function descendantsOf(root: ProcessIdentity, table: ProcessTable = processTable()): ProcessInfo[] {
  let childrenOf = (pid: number): ProcessInfo[] | undefined => {
    const pids = table.children?.(pid);
    // A child is taken only if its stat names the parent it was listed under (else the pid was reused).
    return pids?.map((child) => table.get(child)).filter((info): info is ProcessInfo => info?.ppid === pid);
  };
  if (!childrenOf(root.pid)) {
    const byParent = new Map<number, ProcessInfo[]>();
    for (const info of table.list()) byParent.set(info.ppid, [...(byParent.get(info.ppid) ?? []), info]);
    childrenOf = (pid) => byParent.get(pid);
  }
  const found = new Map<number, ProcessInfo>();
  const stack = [root.pid];
  while (stack.length > 0) {
    for (const child of childrenOf(stack.pop() as number) ?? []) {
      if (found.has(child.pid) || child.start < root.start) continue;
      found.set(child.pid, child);
      stack.push(child.pid);
    }
  }
  return [...found.values()].filter((info) => !isGone(info) && info.pid !== process.pid);
}

/**
 * Processes left by runs whose owner is gone. A process answers to the innermost live run of its token
 * chain: it is a leftover only of the dead runs nested inside that one. And a token can be stale: a shell
 * left with a dead run's token starts a new run, whose own process still carries the old chain in its
 * environment. So a process that owns a live run its chain does not name is never a leftover. Live runs
 * are known from every chain in the table and from `liveRuns` (the live tickets: a run still waiting in
 * the queue has started nothing that carries its token). A process of another user, or whose environment
 * we cannot read, is never a candidate. With `token`, only that dead run's. With `scope`, only processes
 * that ran under that state dir (inStateDirScope): a sweep that names no run must not reach the runs of
 * another state dir (another checkout's tests, a developer's own runs beside a test's sandbox). A sweep for
 * one dead ticket's token needs no scope: the token is that run's alone.
 */
export function findLeftovers(
  options: { token?: string | undefined; liveRuns?: Iterable<RunToken>; scope?: StateDirScope | undefined } = {},
): RunProcess[] {
  const table = processTable();
  const ownerAlive = new Map<string, boolean>();
  const alive = (token: RunToken) => {
    let answer = ownerAlive.get(token.value);
    if (answer === undefined) {
      answer = isAlive(token.owner);
      ownerAlive.set(token.value, answer);
    }
    return answer;
  };
  const all = table.list().filter((info) => info.pid !== process.pid && !isGone(info));
  const chains = new Map(all.map((info) => [info.pid, parseChain(table.envValue(info.pid, TOKEN_ENV))]));
  const liveOwners = new Map<string, string>(); // identityKey of the owner -> its token
  for (const t of options.liveRuns ?? []) liveOwners.set(identityKey(t.owner), t.value);
  for (const chain of chains.values()) {
    for (const t of chain) if (alive(t)) liveOwners.set(identityKey(t.owner), t.value);
  }
  /** Whether `info` itself owns a live run that `chain` does not name (that run answers for it). */
  const ownsAnotherLiveRun = (info: ProcessInfo, chain: RunToken[]) => {
    const token = liveOwners.get(identityKey(info));
    return token !== undefined && !chain.some((t) => t.value === token);
  };
  const found: RunProcess[] = [];
  for (const info of all) {
    const chain = chains.get(info.pid) ?? [];
    let innermostLive = chain.length - 1;
    while (innermostLive >= 0 && !alive(chain[innermostLive] as RunToken)) innermostLive--;
    const dead = chain.slice(innermostLive + 1);
    const leftOf = options.token ? dead.find((t) => t.value === options.token) : dead[dead.length - 1];
    if (!leftOf || !isOurs(info) || ownsAnotherLiveRun(info, chain)) continue;
    const scope = options.scope;
    if (scope && !inStateDirScope(scope, table.envValue(info.pid, STATE_DIR_ENV), () => cwdOf(info.pid))) continue;
    found.push(describe(table, info, leftOf.value));
  }
  return found;
}

/** How often SIGKILL is sent to what is left, and how long apart, before the ending gives up on it. */
const KILL_ROUNDS = 200;
const KILL_PAUSE_MS = 20;

/** A step of the ending policy: the driver answers 'look' with the targets alive now, and waits out 'pause'. */
export type EndingStep = { kind: 'look' } | { kind: 'pause'; ms: number };

export interface EndingRules<T extends ProcessIdentity> {
  /** The first signal (SIGTERM unless the caller chose another; SIGKILL skips the grace period). */
  first: NodeJS.Signals;
  graceMs: number;
  /** How long apart the looks during the grace period are. */
  pollMs: number;
  /** Sends `signal` to one target; the sender re-checks its identity (signalIdentity). */
  send(target: T, signal: NodeJS.Signals): void;
  /** Whether to skip what is left of the grace period (a second interrupt); asked before every look. */
  hurry?(): boolean;
}

/**
 * The ending policy, the one place it is written: the first signal to every target, once per identity
 * (a target that appears during the grace period gets it too: a live tree can still fork), up to `graceMs`
 * for them to go, then SIGKILL to whatever is left, repeated until it is gone (KILL_ROUNDS at most). The
 * policy never waits or looks itself: a driver answers its steps, asynchronously (endProcesses, the
 * runner's TreeTermination) or blocking (endProcessesSync, for exit hooks). Returns whether all went.
 */
export function* endingPolicy<T extends ProcessIdentity>(rules: EndingRules<T>): Generator<EndingStep, boolean, T[]> {
  const hurry = () => rules.first === 'SIGKILL' || (rules.hurry?.() ?? false);
  const sentFirst = new Set<string>();
  const deadline = performance.now() + rules.graceMs;
  while (!hurry()) {
    const alive = yield { kind: 'look' };
    if (alive.length === 0) return true;
    for (const target of alive) {
      const key = identityKey(target);
      if (sentFirst.has(key)) continue;
      sentFirst.add(key);
      rules.send(target, rules.first);
    }
    const left = deadline - performance.now();
    if (left <= 0) break;
    yield { kind: 'pause', ms: Math.min(rules.pollMs, left) };
  }
  for (let round = 0; round < KILL_ROUNDS; round++) {
    const alive = yield { kind: 'look' };
    if (alive.length === 0) return true;
    for (const target of alive) rules.send(target, 'SIGKILL');
    yield { kind: 'pause', ms: KILL_PAUSE_MS };
  }
  return false;
}

/** Runs the ending policy with a driver's look and pause, which may be asynchronous. */
export async function driveEnding<T extends ProcessIdentity>(
  steps: Generator<EndingStep, boolean, T[]>,
  look: () => T[] | Promise<T[]>,
  pause: (ms: number) => Promise<void>,
): Promise<boolean> {
  let step = steps.next();
  while (!step.done) {
    if (step.value.kind === 'look') step = steps.next(await look());
    else {
      await pause(step.value.ms);
      step = steps.next();
    }
  }
  return step.value;
}

/**
 * A fixed list of targets under the ending policy: the first look sees all of them, later looks the ones
 * that were signalled (a target we may not signal is not waited for). Records what was sent to whom.
 */
function endingOf<T extends RunProcess>(targets: T[], graceMs: number) {
  checkOptions('endProcesses', { graceMs }, END_OPTION_RULES);
  const ended = new Map<string, EndedProcess<T>>();
  let looked = false;
  const look = (): T[] => {
    const watched: T[] = looked ? [...ended.values()] : targets;
    looked = true;
    return watched.filter((p) => isAlive(p));
  };
  const steps = endingPolicy<T>({
    first: 'SIGTERM',
    graceMs,
    pollMs: 20,
    send(target, signal) {
      if (!signalIdentity(target, signal)) return;
      const key = identityKey(target);
      const known = ended.get(key);
      if (known) known.signal = signal;
      else ended.set(key, { ...target, signal });
    },
  });
  return { steps, look, ended: () => [...ended.values()] };
}

/** TERM, then SIGKILL after `graceMs` to what is left; resolves with what was signalled and how. */
export async function endProcesses<T extends RunProcess>(targets: T[], graceMs = 1000): Promise<EndedProcess<T>[]> {
  const { steps, look, ended } = endingOf(targets, graceMs);
  await driveEnding(steps, look, (ms) => sleep(ms));
  return ended();
}

/**
 * endProcesses for a process 'exit' hook, where nothing asynchronous runs any more: the pauses are slept
 * on an Atomics cell.
 */
export function endProcessesSync<T extends RunProcess>(targets: T[], graceMs = 1000): EndedProcess<T>[] {
  const { steps, look, ended } = endingOf(targets, graceMs);
  let step = steps.next();
  while (!step.done) {
    if (step.value.kind === 'look') step = steps.next(look());
    else {
      sleepSync(step.value.ms);
      step = steps.next();
    }
  }
  return ended();
}

/** Blocks the thread (for exit hooks, where timers no longer fire). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.max(0, ms));
}

/**
 * Finds and ends the leftovers of dead runs: one run's (`token`), or every dead run of the state dir `env`
 * chooses (as `seq-test reap` does).
 */
export async function reapLeftovers(
  options: { token?: string; graceMs?: number; dryRun?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<EndedProcess[]> {
  const found = findLeftovers({ token: options.token, scope: options.token ? undefined : stateDirScope(options.env) });
  if (options.dryRun) return found.map((p) => ({ ...p, signal: null }));
  return endProcesses(found, options.graceMs);
}

function describe(table: ProcessTable, info: ProcessInfo, token: string): RunProcess {
  return {
    pid: info.pid,
    start: info.start,
    command: table.commandLine(info.pid),
    rssBytes: info.rssBytes,
    token,
  };
}

/** A process's working directory (Linux; undefined elsewhere or when it is gone). */
function cwdOf(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

function isOurs(info: ProcessInfo): boolean {
  if (process.platform !== 'linux') return true; // macOS: `ps -E` only shows our own users' environments
  try {
    return statSync(`/proc/${info.pid}`).uid === (process.getuid?.() ?? 0);
  } catch {
    return false;
  }
}
