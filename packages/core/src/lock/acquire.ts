import { closeSync, constants, existsSync, type FSWatcher, openSync, readdirSync, watch, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, SeqTestError } from '../errors.js';
import { onProcessExit } from '../exit-hooks.js';
import { identityOf, isAlive, type ProcessIdentity, parentIdentity } from '../identity.js';
import { checkOptions, LOCK_OPTION_RULES } from '../options.js';
import { endProcesses, findLeftovers } from '../ownership.js';
import { PARENT_CHECK_MS, parentToWatch } from '../parent-watch.js';
import { processTable } from '../proc/index.js';
import { createToken, parseChain, parseToken, type RunToken, TOKEN_ENV, trustedChain } from '../token.js';
import { type Owner, OwnerWatch } from './owner-watch.js';
import { recordHold, worthHandingOver } from './pace.js';
import { keyDirName, projectKey } from './project-key.js';
import { parseMarkerName, parseTicketName } from './protocol.js';
import { Queue, type QueueEntry, writeAtomic } from './queue.js';
import { ensureStateDir } from './state-dir.js';

export interface AcquireOptions {
  /** Lock key (default: projectKey()). */
  key?: string | undefined;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** How many runs may hold at once (default 1). Nested queues always use 1. */
  slots?: number;
  /** What the ticket shows in status and in other waiters' queue line. */
  command: string;
  /** Fail at once (exit 123) when we cannot hold immediately. */
  noWait?: boolean;
  /** Give up (exit 122) after waiting this long. */
  waitTimeoutMs?: number;
  /** Stops waiting; the ticket is withdrawn and the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Called once our ticket is in the queue (again if it had to join anew), before we wait: the moment to
   * get the run ready (prepareExec), so that our turn starts it at once. A throw leaves the queue.
   */
  onQueued?: (ticket: QueueEntry, token: RunToken) => void;
  /** Called when waiting starts and about every `waitReportMs` while it lasts. */
  onWait?: (info: WaitInfo) => void;
  /**
   * Called once if the process that started this one ends while we wait (we are re-parented: nobody will
   * read our result), by the rules of watchParentDeath (Linux; not under nohup, not with
   * SEQ_TEST_ORPHAN=keep). Watched like an owner we depend on (the owner watch's pidfd; checked every
   * PARENT_CHECK_MS only where that does not cover it), so a waiting integration needs no timer of its own.
   */
  onParentGone?: (parent: number) => void;
  /** Warnings about the state dir (garbage files, dead runs reaped). */
  onWarning?: (message: string) => void;
  /**
   * How often onWait is called (default 250 ms); each call costs a full read of the queue, so callers
   * that show no live line ask for less: NO_LIVE_LINE_REPORT_MS or more (WaitLine's `reportEveryMs`) lets
   * an idle waiter sleep with no timer at all.
   */
  waitReportMs?: number;
  /** Fallback poll interval for dead holders (default 100 ms; the file-system watch wakes us otherwise). */
  pollMs?: number;
  /** Grace between TERM and KILL for a dead run's leftovers (default 1000 ms). */
  reapGraceMs?: number;
  impl?: string;
  /**
   * Memory-aware admission (`--slots auto`, memory/auto.ts): the ticket carries its `admission` field
   * (protocol version 2), and when the slot count (`slots`, then the most holders allowed) would let us
   * hold, we hold only if this admits us too. Called with the key's top-level queue dir (where the
   * history lives); not called for a nested queue (a run inside a holder was admitted with it).
   */
  admission?: (queueDir: string) => AdmissionHook;
  /**
   * The process that owns the ticket (its pid and start time name the ticket and the run's token), when it
   * is not this process: `seq-test run` started by its launcher (packages/core/native/launcher.c) queues in
   * the launcher's name, so that the ticket stays alive while the launcher waits alone.
   */
  owner?: ProcessIdentity;
  /** The name of a ticket `owner` already has in this queue: take it up where it stands instead of joining. */
  resumeTicket?: string;
  /**
   * Offered the wait when, just after joining, more than `slots` + 1 live tickets are ahead (and neither
   * noWait, waitTimeoutMs nor admission is set): returns true when the owner waits alone from here (the
   * launcher); acquireLock then rejects with HandedOff and leaves the ticket in place.
   */
  handOff?: (plan: HandOffPlan) => boolean;
}

export interface HandOffPlan {
  ticketsDir: string;
  ticket: string;
  /** Hand the wait back (start this process again) once this many live tickets or fewer are ahead. */
  near: number;
}

/** acquireLock's rejection when handOff took the wait: the ticket stays, owned by the launcher. */
export class HandedOff extends Error {
  constructor() {
    super('the wait was handed to the launcher');
  }
}

export interface AdmissionHook {
  ticketField(): unknown;
  /** `ownerPid`: our ticket's owner (its tree's memory is in use already: the rule takes it off our need). */
  admit(ahead: QueueEntry[], ownerPid: number): { admit: boolean; text: string };
  /**
   * Asked at each full read while we wait: true when what ticketField() says has changed (a prediction
   * learned since we joined), and our ticket is rewritten with it.
   */
  relearn?(ahead: QueueEntry[]): boolean;
}

export interface WaitInfo {
  key: string;
  position: number;
  queueLength: number;
  /** The runs that hold right now (or are ahead of us). */
  ahead: QueueEntry[];
  waitedMs: number;
  nested: boolean;
  /** With `--slots auto`: why the memory rule keeps us waiting. */
  admission?: string;
}

export interface LockHandle {
  key: string;
  token: RunToken;
  /** True when we joined the queue of a holder we run inside (re-entrancy). */
  nested: boolean;
  waitedMs: number;
  ticket: QueueEntry;
  queue: Queue;
  /** Leaves the queue; safe to call twice. Also runs on process exit. */
  release(): void;
}

/** The default `waitReportMs`: how often a live wait line is redrawn. */
export const WAIT_REPORT_MS = 250;
/**
 * A `waitReportMs` of at least this says that no live line is drawn (off a terminal the wait line is
 * printed once): the queue is then read only when something changes, and an idle waiter has no timer.
 */
export const NO_LIVE_LINE_REPORT_MS = 2000;
/**
 * Without an owner watch (no helper: macOS, SEQ_TEST_NO_SUBREAPER=1, no pidfd), how often a waiter that is
 * not next (more than `slots` tickets ahead) re-evaluates without a change: its wait ends only when the
 * ticket just ahead goes or starts holding (both watched), or when that ticket's owner dies — rare, and then
 * noticed within this. Dead holders are the next waiter's to notice, within `pollMs`.
 */
const IDLE_POLL_MS = 2000;
/**
 * A run handed to the launcher is started again once this many more than `slots` live tickets are ahead:
 * two places of lead, so that its Node has started and waits, its helper parked, before its turn even when
 * runs are short (a Node start-up takes ~50 ms on a quiet machine, several times that under load).
 */
const NODE_WAITERS_BEYOND_SLOTS = 2;
/** How long a wait lasts before the owner watch (a helper process) replaces the poll. */
const OWNER_WATCH_AFTER_MS = IDLE_POLL_MS;
/** How often such a waiter reads the whole queue when nobody watches a live wait line. */
const IDLE_FULL_READ_MS = 10_000;

/**
 * Joins the FIFO queue of a key and resolves once we hold a slot. A process that runs inside a holder's
 * tree (its SEQ_TEST_TOKEN chain names a live ticket of this key) queues among that holder's nested runs
 * instead, so it never waits for its own ancestor.
 */
export async function acquireLock(options: AcquireOptions): Promise<LockHandle> {
  checkOptions('acquireLock', options, LOCK_OPTION_RULES);
  const env = options.env ?? process.env;
  const key = projectKey({ key: options.key, cwd: options.cwd, env });
  const warn = options.onWarning ?? (() => {});
  const stateDir = ensureStateDir(env);
  const top = new Queue(join(stateDir, keyDirName(key)), warn).ensure();
  writeKeyFile(top.dir, key);
  const { queue, nested } = findQueue(top, trustedChain(env[TOKEN_ENV]));
  const slots = nested ? 1 : (options.slots ?? 1);
  const admission = nested ? undefined : options.admission?.(top.dir);
  const self = options.owner ?? identityOf(process.pid);
  if (!self) throw new SeqTestError('cannot read our own process entry (is /proc mounted?)');
  const resumed = options.resumeTicket === undefined ? undefined : findResumed(queue, options.resumeTicket, self, warn);
  const token = resumed ? (parseToken(resumed.token) as RunToken) : createToken(self);
  // Recorded so that `seq-test status` can tell when the process that started the owner is gone (re-parented).
  const parent = parentIdentity(self.pid);
  const reapRun = async (dead: string) => {
    // The live tickets too: a waiter started from a shell that kept the dead run's token is not its leftover.
    const liveRuns = queue.read().tickets.flatMap((t) => (t.alive ? [{ value: t.token, owner: t.owner }] : []));
    const leftovers = findLeftovers({ token: dead, liveRuns });
    if (leftovers.length > 0) {
      const ended = await endProcesses(leftovers, options.reapGraceMs ?? 1000);
      warn(
        `a run that died left ${ended.length} process(es) behind; ended: ${ended.map((p) => `${p.pid} (${p.command})`).join(', ')}`,
      );
    }
  };

  let mine =
    resumed ??
    queue.enqueue({
      token: token.value,
      pid: self.pid,
      start: self.start,
      boot: processTable().bootId(),
      slots,
      key,
      command: options.command,
      cwd: options.cwd ?? process.cwd(),
      enqueuedAt: Date.now(),
      impl: options.impl ?? 'node',
      ...(admission ? { admission: admission.ticketField() } : {}),
      ...(parent ? { parent } : {}),
    });
  // At exit, after the run's processes are ended (the 'reap' hooks of whoever runs them).
  const forgetExit = onProcessExit('release', () => queue.remove(mine));
  const release = () => {
    queue.remove(mine);
    forgetExit();
    // After the ticket is gone, so off the next run's path: the pace a far waiter judges its wait by.
    const startedAt = mine.ticket?.startedAt;
    if (typeof startedAt === 'number') recordHold(queue.dir, mine.token, Date.now() - startedAt);
  };

  // A resumed ticket has waited since it joined (under a Node process that handed the wait over).
  const waitedBefore = resumed?.ticket ? Math.max(0, Date.now() - resumed.ticket.enqueuedAt) : 0;
  const began = performance.now() - waitedBefore;
  // Each waiter watches only what can end its wait: the ticket just ahead of ours (with slots > 1, every
  // ticket ahead), and choosing/ once we are next. A watch on the whole queue woke every waiter on every
  // change; with twenty of them, their reactions cost more than the handoff itself. Owners that die
  // without a word (SIGKILL) are reported by the owner watch (else found by the poll), and a live wait line
  // reads the queue in full every `waitReportMs`.
  const parentPid = options.onParentGone ? parentToWatch() : undefined;
  const starter = parentPid === undefined ? undefined : (identityOf(parentPid) ?? { pid: parentPid, start: -1 });
  const wake = new Waker(queue, token.value, options.pollMs ?? 100, options.signal, env, starter);
  let starterTold = false;
  const checkParent = () => {
    if (!starter || starterTold || process.ppid === starter.pid) return;
    starterTold = true;
    options.onParentGone?.(starter.pid);
  };
  const reportEveryMs = options.waitReportMs ?? WAIT_REPORT_MS;
  // Reports far apart: no live line (off a terminal) that needs the queue read on a timer.
  const noLiveLine = reportEveryMs >= NO_LIVE_LINE_REPORT_MS;
  let lastReport = -Infinity;
  const hold = async (quick: boolean): Promise<LockHandle> => {
    await dispatchPendingSignals();
    // An interrupt that came before our turn (even while we were stopped mid-join) means the command never starts.
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
    queue.markStarted(mine);
    // The quick check looks only ahead of us: dead tickets behind us (a waiter killed while it waited) are
    // removed by a full read, done once the caller has started its run (setImmediate runs after the
    // code that awaits us), off the path of the handoff.
    if (quick)
      setImmediate(() => {
        queue.tidy(queue.read(), reapRun).catch((error: unknown) => warn(`could not tidy the queue: ${error}`));
      });
    return { key, token, nested, waitedMs: Math.round(performance.now() - began), ticket: mine, queue, release };
  };
  try {
    if (options.handOff && !resumed && !options.noWait && options.waitTimeoutMs === undefined && !admission) {
      // Far from the head, the launcher waits in the kernel for a fraction of what this process costs, unless
      // the queue's pace says the wait is short (then a second Node start-up would cost more than it saves).
      const state = queue.read();
      const decision = queue.decide(state, mine, slots);
      const near = slots + NODE_WAITERS_BEYOND_SLOTS;
      if (
        !decision.lost &&
        !decision.holding &&
        decision.ahead.length > near &&
        worthHandingOver(queue.dir, decision.ahead, slots)
      ) {
        options.onWait?.({
          key,
          position: decision.position,
          queueLength: state.tickets.filter((t) => t.alive).length,
          ahead: decision.ahead,
          waitedMs: performance.now() - began,
          nested,
        });
        if (options.handOff({ ticketsDir: queue.ticketsDir, ticket: mine.name, near })) {
          forgetExit();
          throw new HandedOff();
        }
      }
    }
    options.onQueued?.(mine, token);
    let fullReadAt = -Infinity;
    for (;;) {
      checkParent();
      // Between full reads (at least one per report interval), a wake-up that cannot change our answer
      // costs two directory listings and a /proc read or two.
      const sinceFull = performance.now() - fullReadAt;
      // Without a live line (reports far apart), a waiter reads the queue in full only when something
      // changed (an owner ahead ended: wake.ownerGone) while the owner watch covers everything ahead,
      // else rarely when it is not next: it can only tidy what others ahead of it will tidy first, and its
      // report would say the same. Memory admission re-learns its prediction on its own schedule.
      const fullEveryMs = wake.takeOwnerGone()
        ? 0
        : noLiveLine && wake.covered && !admission
          ? Infinity
          : wake.idle && noLiveLine
            ? IDLE_FULL_READ_MS
            : reportEveryMs;
      const quick = sinceFull < fullEveryMs && !options.noWait ? queue.quickCheck(mine, slots) : undefined;
      // With memory admission, a free slot is only the start of the answer: the full read decides.
      if (quick?.holding && !admission) return await hold(true);
      if (quick && !quick.holding) {
        wake.watchFor(quick.ahead, slots, mine.name);
        const waited = performance.now() - began;
        if (options.waitTimeoutMs === undefined || waited < options.waitTimeoutMs) {
          await wake.next(Math.min(fullEveryMs - sinceFull, (options.waitTimeoutMs ?? Infinity) - waited));
          if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
          continue;
        }
      }
      fullReadAt = performance.now();
      const state = queue.read();
      if (state.tickets.some((t) => !t.alive) || state.deadMarkers.length > 0 || state.deadOverflow.length > 0) {
        await queue.tidy(state, reapRun);
        continue;
      }
      const decision = queue.decide(state, mine, slots);
      if (decision.lost) {
        warn('our ticket vanished from the queue; joining again at the end');
        mine = queue.enqueue({ ...(mine.ticket as NonNullable<QueueEntry['ticket']>), enqueuedAt: Date.now() });
        options.onQueued?.(mine, token);
        continue;
      }
      if (admission?.relearn?.(decision.ahead) && mine.ticket) {
        // Write + rename by the owner, as startedAt: holders and waiters behind us read our new prediction.
        const next = { ...mine.ticket, admission: admission.ticketField() };
        try {
          writeAtomic(queue.ticketsDir, mine.file, mine.token, next);
          mine.ticket = next as typeof mine.ticket;
        } catch (error) {
          warn(`could not write the learned memory prediction into our ticket: ${(error as Error).message}`);
        }
      }
      const verdict = decision.holding ? admission?.admit(decision.ahead, mine.owner.pid) : undefined;
      if (decision.holding && (verdict === undefined || verdict.admit)) return await hold(false);
      const waitedMs = performance.now() - began;
      if (options.noWait) {
        throw new SeqTestError(
          `the lock for ${key} is busy (${verdict ? verdict.text : describeAhead(decision.ahead)}) and --no-wait was given`,
          EXIT.LOCK_BUSY,
        );
      }
      if (options.waitTimeoutMs !== undefined && waitedMs >= options.waitTimeoutMs) {
        throw new SeqTestError(
          `gave up after waiting ${Math.round(waitedMs / 100) / 10} s for the lock for ${key} (--wait-timeout)`,
          EXIT.WAIT_TIMEOUT,
        );
      }
      if (options.onWait && waitedMs - lastReport >= reportEveryMs) {
        lastReport = waitedMs;
        const live = state.tickets.filter((t) => t.alive);
        options.onWait({
          key,
          position: decision.position,
          queueLength: live.length,
          ahead: decision.ahead,
          waitedMs,
          nested,
          ...(verdict ? { admission: verdict.text } : {}),
        });
      }
      const remaining = options.waitTimeoutMs === undefined ? Infinity : options.waitTimeoutMs - waitedMs;
      wake.watchFor(
        decision.ahead.map((t) => t.name),
        slots,
        mine.name,
      );
      await wake.next(Math.min(remaining, noLiveLine && !admission ? Infinity : reportEveryMs));
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
    }
  } catch (error) {
    if (!(error instanceof HandedOff)) release();
    throw error;
  } finally {
    wake.close();
  }
}

/** The ticket our launcher kept for us, if it is still there and still its own; else we join anew. */
function findResumed(
  queue: Queue,
  name: string,
  owner: ProcessIdentity,
  warn: (message: string) => void,
): QueueEntry | undefined {
  const entry = queue.read().tickets.find((t) => t.name === name);
  if (entry?.alive && entry.owner.pid === owner.pid && entry.owner.start === owner.start) return entry;
  warn(`the ticket ${name} that our launcher kept is gone from ${queue.ticketsDir}; joining the queue again`);
  return undefined;
}

/** Walks the token chain: each token that holds a ticket in the current queue leads into its nested queue. */
function findQueue(top: Queue, chain: string | undefined): { queue: Queue; nested: boolean } {
  let queue = top;
  let nested = false;
  for (const token of parseChain(chain)) {
    const holder = queue.read().tickets.find((t) => t.token === token.value && t.alive);
    if (holder) {
      queue = queue.nested(token.value).ensure();
      nested = true;
    }
  }
  return { queue, nested };
}

/** The informational key file, written once: never through a symlink, never over anything; failures do not matter. */
function writeKeyFile(dir: string, key: string): void {
  try {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const fd = openSync(join(dir, 'key'), flags, 0o600);
    try {
      writeSync(fd, `${key}\n`);
    } finally {
      closeSync(fd);
    }
  } catch {}
}

/**
 * Lets the event loop dispatch signals that already arrived: Node runs a signal's handler from the loop,
 * never while our synchronous join runs (a SIGINT sent while we were stopped in the middle of choosing
 * waits there). Two turns: the first may be taken in the very phase that woke us, before the loop polls.
 */
async function dispatchPendingSignals(): Promise<void> {
  for (let turn = 0; turn < 2; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function describeAhead(ahead: QueueEntry[]): string {
  const first = ahead[0];
  if (!first) return 'another process is joining';
  return `held by pid ${first.owner.pid}${first.ticket?.command ? `: ${first.ticket.command}` : ''}`;
}

/**
 * Resolves when something we watch changes (inotify on Linux, FSEvents/kqueue on macOS) or an owner we
 * depend on ends (the owner watch: pidfds in the helper), or when aborted. Only where the owner watch
 * cannot cover every owner that matters (no helper, no pidfd) does a timer run: after `pollMs` at most when
 * we are next (a SIGKILLed holder changes no file), after IDLE_POLL_MS further back.
 */
class Waker {
  private readonly tickets = new Map<string, FSWatcher>();
  private choosing: FSWatcher | undefined;
  private pending: (() => void) | undefined;
  private dirty = false;
  /** The owner watch: undefined until first needed, null where there is none (we poll). */
  private owners: OwnerWatch | null | undefined;
  /** The owners that can end our wait without a file changing: those of the watched tickets, and choosers. */
  private dependsOn: Owner[] = [];
  private ownerGone = false;
  private waitingSince: number | undefined;
  /** A file watch we wanted could not be set (inotify limits): only the poll sees that change. */
  private blind = false;
  /** More than `slots` tickets ahead: a live waiter stands between us and every holder. */
  idle = false;

  constructor(
    private readonly queue: Queue,
    private readonly ownToken: string,
    private readonly pollMs: number,
    private readonly signal: AbortSignal | undefined,
    private readonly env: NodeJS.ProcessEnv,
    /** The parent whose end the caller wants to hear of (onParentGone); start -1: unknown, checked on a timer. */
    private readonly parent?: Owner,
  ) {
    signal?.addEventListener('abort', () => this.fire(), { once: true });
  }

  /** True while the owner watch covers every owner we depend on: no timer is needed. */
  get covered(): boolean {
    return !this.blind && this.parent?.start !== -1 && Boolean(this.owners?.covers(this.dependsOn));
  }

  /** True once after an owner we depended on ended: its ticket is left behind, so read the queue in full. */
  takeOwnerGone(): boolean {
    const gone = this.ownerGone;
    this.ownerGone = false;
    return gone;
  }

  /**
   * Watches what can end the wait of a ticket with `ahead` (names, in queue order) in front of it: with one
   * slot the last of them (the others can only leave before it matters), else all of them; and choosing/
   * when fewer than `slots` + 1 are ahead (a newcomer choosing its number holds us back once we are next);
   * and our own ticket (`own`: gone means we must join again). The owners of those tickets and of live
   * choosing markers go to the owner watch.
   */
  watchFor(ahead: string[], slots: number, own: string): void {
    this.idle = ahead.length > slots;
    this.blind = false;
    const owned = new Set(slots === 1 ? ahead.slice(-1) : ahead);
    const wanted = new Set([...owned, own]);
    for (const [name, watcher] of this.tickets) {
      if (wanted.has(name)) continue;
      watcher.close();
      this.tickets.delete(name);
    }
    for (const name of wanted) if (!this.tickets.has(name)) this.watchTicket(name);
    const owners: Owner[] = [];
    for (const name of owned) {
      const parsed = parseTicketName(name);
      if (parsed) owners.push({ pid: parsed.pid, start: parsed.start });
    }
    if (ahead.length <= slots) {
      if (!this.choosing) {
        const watcher = this.watch(this.queue.choosingDir, () => this.fire());
        this.choosing = typeof watcher === 'object' ? watcher : undefined;
        // A marker removed between our look at choosing/ and this watch sent no event: look once more.
        if (this.choosing) this.dirty = true;
        else this.blind = true;
      }
      owners.push(...this.choosers());
    } else {
      this.choosing?.close();
      this.choosing = undefined;
    }
    if (this.parent) owners.push(this.parent);
    this.dependsOn = owners;
    // Started once the wait has lasted OWNER_WATCH_AFTER_MS: in a queue that moves (short runs) the waiters
    // spawn nothing (a spawn from Node costs a fork of it, on the path of a turn that may be near), and the
    // poll until then finds a dead owner as before.
    this.waitingSince ??= performance.now();
    if (this.owners === undefined && performance.now() - this.waitingSince >= OWNER_WATCH_AFTER_MS)
      this.owners =
        OwnerWatch.start(this.env, (gone) => {
          if (gone) this.ownerGone = true;
          this.fire();
        }) ?? null;
    this.owners?.watch(owners);
  }

  /** The owners of live choosing markers other than ours (a joiner killed mid-choice leaves its marker). */
  private choosers(): Owner[] {
    let names: string[];
    try {
      names = readdirSync(this.queue.choosingDir);
    } catch {
      return [];
    }
    return names.flatMap((name) => {
      const parsed = parseMarkerName(name);
      return parsed && parsed.token !== this.ownToken && isAlive(parsed)
        ? [{ pid: parsed.pid, start: parsed.start }]
        : [];
    });
  }

  /**
   * A ticket's watch ends when the file goes (wake up) or is replaced by its owner's rewrite (startedAt set
   * when it begins to hold: watch the new file, and look again, as we may be next now and must poll).
   */
  private watchTicket(name: string): void {
    const path = join(this.queue.ticketsDir, name);
    const watcher = this.watch(path, () => {
      if (typeof watcher !== 'object') return;
      watcher.close();
      if (this.tickets.get(name) !== watcher) return;
      this.tickets.delete(name);
      if (existsSync(path)) this.watchTicket(name);
      this.fire();
    });
    if (typeof watcher === 'object') this.tickets.set(name, watcher);
    else if (watcher === 'gone') this.fire();
    else this.blind = true;
  }

  async next(maxMs: number): Promise<void> {
    if (this.dirty || this.signal?.aborted) {
      this.dirty = false;
      return;
    }
    const poll = Math.min(this.idle ? IDLE_POLL_MS : this.pollMs, this.parent ? PARENT_CHECK_MS : Infinity);
    const timeout = this.covered ? maxMs : Math.min(poll, maxMs);
    // A plain timer, cleared when something fires first: a left-over timer would hold the process open.
    // None at all while the owner watch covers us (its pipe keeps the process alive meanwhile).
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.pending = resolve;
      if (Number.isFinite(timeout)) timer = setTimeout(resolve, Math.max(1, timeout));
    });
    clearTimeout(timer);
    this.pending = undefined;
    this.dirty = false;
  }

  /** A watch, 'gone' when the path no longer exists, or undefined when no watch is available. */
  private watch(path: string, onChange: () => void): FSWatcher | 'gone' | undefined {
    try {
      const watcher = watch(path, { persistent: false }, onChange);
      watcher.on('error', onChange);
      return watcher;
    } catch (error) {
      // No watch available (e.g. inotify limits reached): the poll still works.
      return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : undefined;
    }
  }

  private fire(): void {
    if (this.pending) this.pending();
    else this.dirty = true;
  }

  close(): void {
    for (const watcher of this.tickets.values()) watcher.close();
    this.tickets.clear();
    this.choosing?.close();
    this.choosing = undefined;
    this.owners?.close();
  }
}
