import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { type AttemptLog, openAttemptLog } from './attempt-log.js';
import { assertSupportedPlatform, EXIT, SeqTestError } from './errors.js';
import { identityOf, type ProcessIdentity, signalIdentity } from './identity.js';
import { resolveCommand } from './resolve-command.js';
import { signalName, signalNumber } from './signals.js';
import { subreaperPath } from './subreaper.js';
import { createToken, extendChain, type RunToken, TOKEN_ENV } from './token.js';
import { type OwnedProcess, RunTracker, type SampleRequest, type TreeSample } from './tracker.js';
import { formatBytes, formatDuration } from './units.js';

export interface ExecOptions {
  /** The command and its arguments. */
  command: string[];
  cwd?: string;
  /** Environment of the command (default: ours). The run token is added to it. */
  env?: NodeJS.ProcessEnv;
  /** End the whole tree after this long (0 or undefined: never). Bounds `waitAll` too. */
  timeoutMs?: number;
  /** First signal sent to the tree on timeout, memory limit and linger expiry (default SIGTERM). */
  killSignal?: NodeJS.Signals;
  /** How long after the first signal SIGKILL follows (default 5000). */
  graceMs?: number;
  /** How long leftovers may outlive the main command before they are ended (default 3000). */
  lingerMs?: number;
  /** Wait for every leftover however long it takes (bounded by timeoutMs) instead of lingerMs. */
  waitAll?: boolean;
  /** End the tree when its total resident memory exceeds this many bytes. */
  maxMemoryBytes?: number;
  /** Extra attempts after a non-zero exit or a timeout (default 0). */
  retries?: number;
  retryDelayMs?: number;
  /** Keep stdout/stderr in the result (for --json). */
  capture?: boolean;
  /** Echo the command's stdout/stderr live (default true for both). */
  echoStdout?: boolean;
  echoStderr?: boolean;
  /** Append a readable record per attempt to this file. */
  logFile?: string;
  /** Run token to use (the lock passes its ticket's); a fresh one otherwise. */
  token?: RunToken;
  /** Progress narration (--verbose). */
  onNarrate?: (line: string) => void;
  /** Things the user must hear about: leftovers ended, limits hit. */
  onNotice?: (line: string) => void;
  /** Lets the caller interrupt the run (signal forwarding). */
  controller?: ExecController;
}

export type EndReason = 'linger' | 'timeout' | 'memory' | 'interrupt';

export interface ReapedProcess {
  pid: number;
  command: string;
  /** The last signal sent to it. */
  signal: NodeJS.Signals;
  reason: EndReason;
}

export interface AttemptResult {
  attempt: number;
  /** What seq-test exits with for this attempt. */
  exitCode: number;
  /** The signal that ended the main command, if one did. */
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  memoryExceeded: boolean;
  /** The signal seq-test received and forwarded, if the attempt was interrupted. */
  interrupted: NodeJS.Signals | null;
  startedAt: string;
  durationMs: number;
  peakRssBytes: number;
  peakProcesses: number;
  /** Processes seq-test ended: leftovers after the main command (reason "linger") and the tree on timeout, memory or interrupt. */
  reaped: ReapedProcess[];
  stdout?: string;
  stderr?: string;
}

export interface ExecResult {
  command: string[];
  token: string;
  exitCode: number;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  memoryExceeded: boolean;
  interrupted: NodeJS.Signals | null;
  durationMs: number;
  peakRssBytes: number;
  peakProcesses: number;
  attempts: AttemptResult[];
}

/** Lets signal handlers (or any caller) stop a run: the first interrupt forwards, the second kills. */
export class ExecController {
  private listener: ((signal: NodeJS.Signals) => void) | undefined;
  private received: NodeJS.Signals | undefined;
  private wake: ((signal: NodeJS.Signals) => void) | undefined;
  /** Settles at the first interrupt (wakes a retry delay); never rejects, holds no timer. */
  readonly interruption: Promise<NodeJS.Signals> = new Promise((resolve) => {
    this.wake = resolve;
  });

  interrupt(signal: NodeJS.Signals): void {
    this.received ??= signal;
    this.wake?.(signal);
    this.listener?.(signal);
  }

  get interrupted(): NodeJS.Signals | undefined {
    return this.received;
  }

  /** @internal */
  listen(listener: ((signal: NodeJS.Signals) => void) | undefined): void {
    this.listener = listener;
  }
}

const DEFAULTS = { killSignal: 'SIGTERM' as NodeJS.Signals, graceMs: 5000, lingerMs: 3000 };

/** setTimeout's limit: a longer delay fires at once (Node warns and uses 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Waits `ms` or until one of `wake` settles, whichever comes first, and clears its timer either way:
 * a timer left behind by a lost race would keep the process alive after the run (up to a second per run).
 */
function pause(ms: number, ...wake: Promise<unknown>[]): Promise<void> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    timer = setTimeout(done, Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    for (const promise of wake) promise.then(done, done);
  });
}

/** A timeout that also works past setTimeout's ~24.8-day limit (re-armed in steps). */
function longTimeout(ms: number, fire: () => void): { clear(): void } {
  const deadline = performance.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const left = deadline - performance.now();
    if (left <= 0) fire();
    else timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
  };
  timer = setTimeout(arm, Math.min(ms, MAX_TIMER_MS));
  return { clear: () => clearTimeout(timer) };
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * A run made ready ahead of its turn (see prepareExec). Call run() or cancel(): until then its parked helper
 * waits, and keeps the Node process alive.
 */
export interface PreparedExec {
  /** Starts the command and waits for its whole tree, like execTree. Call once. */
  run(): Promise<ExecResult>;
  /** Gives the turn up before run(): the waiting helper exits and nothing was started. Safe to repeat. */
  cancel(): void;
}

/**
 * Runs a command and waits for its whole process tree, enforcing timeout, memory limit and retries.
 * Throws SeqTestError (exit 125/126/127) before spawning when the command cannot run at all.
 */
export async function execTree(options: ExecOptions): Promise<ExecResult> {
  return prepareExec(options).run();
}

/**
 * Validates a run and, with the subreaper helper, starts the helper already, parked: it waits for one byte
 * before it starts the command. A queued `seq-test run` calls this while it waits for the lock, so that
 * when its turn comes, starting the command costs a write instead of a process spawn (and the code on that
 * path has run once). Throws SeqTestError (exit 125/126/127) when the command cannot run at all.
 */
export function prepareExec(options: ExecOptions): PreparedExec {
  assertSupportedPlatform();
  const [file, ...args] = options.command;
  if (file === undefined) throw new SeqTestError('no command given: put it after --, e.g. seq-test exec -- npm test');
  const cwd = options.cwd ?? process.cwd();
  const resolved = resolveCommand(file, cwd, (options.env ?? process.env).PATH);
  const self = identityOf(process.pid);
  if (!self) throw new SeqTestError('cannot read our own process entry (is /proc mounted?)');
  const token = options.token ?? createToken(self);
  const env = { ...(options.env ?? process.env) };
  env[TOKEN_ENV] = extendChain(env[TOKEN_ENV], token);
  const launch: Launch = {
    file,
    resolved,
    args,
    cwd,
    env,
    helperPath: subreaperPath(options.env ?? process.env),
    piped: Boolean(options.capture || options.logFile),
  };
  const parked = launch.helperPath ? startParked(launch) : undefined;
  // The first attempt is set up now, up to the start of the command, and waits for the turn.
  let giveTurn!: (start: boolean) => void;
  const turn = new Promise<boolean>((resolve) => {
    giveTurn = resolve;
  });
  const result = runAttempts(options, launch, token, parked, turn);
  result.catch(() => {}); // observed by run()'s caller; a cancelled run has no one to observe it
  let state: 'ready' | 'running' | 'cancelled' = 'ready';
  return {
    cancel() {
      if (state !== 'ready') return;
      state = 'cancelled';
      giveTurn(false);
    },
    async run() {
      if (state !== 'ready')
        throw new SeqTestError(`this run was already ${state === 'running' ? 'started' : 'cancelled'}`);
      state = 'running';
      giveTurn(true);
      return (await result) as ExecResult;
    },
  };
}

/** Runs every attempt; undefined when the turn was given up before the first one started. */
async function runAttempts(
  options: ExecOptions,
  launch: Launch,
  token: RunToken,
  parked: ParkedHelper | undefined,
  turn: Promise<boolean>,
): Promise<ExecResult | undefined> {
  const began = performance.now();
  const attempts: AttemptResult[] = [];
  const maxAttempts = 1 + (options.retries ?? 0);
  const controller = options.controller;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const first = attempt === 1;
    const result = await runAttempt(options, {
      ...launch,
      token,
      attempt,
      maxAttempts,
      parked: first ? parked : undefined,
      turn: first ? turn : undefined,
    });
    if (!result) return undefined;
    attempts.push(result);
    const failed = result.exitCode !== 0;
    if (!failed || result.interrupted || controller?.interrupted || attempt === maxAttempts) break;
    options.onNarrate?.(
      `attempt ${attempt} failed (exit ${result.exitCode}); ${plural(maxAttempts - attempt, 'retry', 'retries')} left`,
    );
    if (options.retryDelayMs) await pause(options.retryDelayMs, ...(controller ? [controller.interruption] : []));
    if (controller?.interrupted) break;
  }
  const last = attempts[attempts.length - 1] as AttemptResult;
  // Interrupted between two attempts: nothing was running, but the run still ends as the signal says.
  const interrupted = last.interrupted ?? controller?.interrupted ?? null;
  return {
    command: options.command,
    token: token.value,
    exitCode: interrupted && !last.interrupted ? 128 + signalNumber(interrupted) : last.exitCode,
    signal: last.signal,
    timedOut: last.timedOut,
    memoryExceeded: last.memoryExceeded,
    interrupted,
    durationMs: Math.round(performance.now() - began),
    peakRssBytes: Math.max(...attempts.map((a) => a.peakRssBytes)),
    peakProcesses: Math.max(...attempts.map((a) => a.peakProcesses)),
    attempts,
  };
}

/** How every attempt of one run is started. */
interface Launch {
  file: string;
  resolved: string;
  args: string[];
  cwd: string;
  /** The command's environment, run token included. */
  env: NodeJS.ProcessEnv;
  helperPath: string | undefined;
  /** stdout/stderr go through us (capture or log) instead of straight to ours. */
  piped: boolean;
}

/** A helper started with --park, waiting for the byte that starts the command. */
interface ParkedHelper {
  child: ChildProcess;
  /** Whether it ended (or failed to start) while parked: it cannot be used then. */
  readonly gone: boolean;
  /** Ends it; nothing was started. */
  dismiss(): void;
}

function spawnChild(launch: Launch, park: boolean): ChildProcess {
  const output = launch.piped ? 'pipe' : 'inherit';
  if (!launch.helperPath)
    return spawn(launch.resolved, launch.args, {
      cwd: launch.cwd,
      env: launch.env,
      argv0: launch.file,
      detached: true,
      stdio: ['inherit', output, output],
    });
  // fd 3 is a socket pair: the helper reports on it, and reads the go byte from it when parked.
  return spawn(launch.helperPath, [...(park ? ['--park'] : []), launch.resolved, launch.file, ...launch.args], {
    cwd: launch.cwd,
    env: launch.env,
    detached: true,
    stdio: ['inherit', output, output, 'pipe'],
  });
}

function startParked(launch: Launch): ParkedHelper {
  const child = spawnChild(launch, true);
  const control = child.stdio[3] as Writable | null;
  control?.on('error', () => {}); // its end going away is seen as 'exit'
  // A byte the helper ignores: the first write on a socket is slow (code paths run for the first time),
  // and the one that counts, the go byte, should not be it.
  control?.write('w');
  let gone = false;
  child.once('exit', () => {
    gone = true;
  });
  child.once('error', () => {
    gone = true;
  });
  return {
    child,
    get gone() {
      return gone;
    },
    dismiss() {
      // It has started nothing and ignores TERM; it is still our unreaped child, so its pid is its own.
      if (!gone) child.kill('SIGKILL');
      for (const stream of child.stdio) stream?.destroy();
    },
  };
}

interface AttemptPlan extends Launch {
  token: RunToken;
  attempt: number;
  maxAttempts: number;
  /** The helper started ahead of time for this attempt, if any. */
  parked: ParkedHelper | undefined;
  /** Settles when the attempt may start (true) or is given up (false); absent: start at once. */
  turn: Promise<boolean> | undefined;
}

interface MainExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

async function runAttempt(options: ExecOptions, plan: AttemptPlan): Promise<AttemptResult | undefined> {
  const killSignal = options.killSignal ?? DEFAULTS.killSignal;
  const graceMs = options.graceMs ?? DEFAULTS.graceMs;
  const lingerMs = options.lingerMs ?? DEFAULTS.lingerMs;
  const narrate = (line: string) => options.onNarrate?.(line);
  const notice = (line: string) => options.onNotice?.(line);
  const helperPath = plan.helperPath;
  const parked = plan.parked && !plan.parked.gone ? plan.parked : undefined;
  if (plan.parked && !parked) plan.parked.dismiss();
  // Without a parked helper there is nothing to set up ahead: wait for the turn, then spawn.
  if (!parked && plan.turn && !(await plan.turn)) return undefined;
  const child: ChildProcess = parked?.child ?? spawnChild(plan, Boolean(helperPath));
  let log: AttemptLog | undefined;

  // --- output --------------------------------------------------------------------------------------------
  const captured = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const streamsClosed: Promise<void>[] = [];
  // When our own stdout/stderr breaks (`seq-test exec --log f -- cmd | head`), stop echoing and close the
  // command's pipe too, so that its next write fails as it would have without seq-test in between
  // (SIGPIPE/EPIPE), instead of seq-test dying on an unhandled EPIPE and leaving the tree behind.
  const broken = { stdout: false, stderr: false };
  const echoes = { stdout: options.echoStdout !== false, stderr: options.echoStderr !== false };
  const targetErrors: [NodeJS.WriteStream, (error: Error) => void][] = [];
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = child[name];
    if (!stream) continue;
    stream.on('data', (chunk: Buffer) => {
      if (echoes[name] && !broken[name]) process[name].write(chunk);
      if (options.capture) captured[name].push(chunk);
      log?.output(name, chunk);
    });
    streamsClosed.push(new Promise((resolve) => stream.once('close', () => resolve())));
    if (echoes[name]) {
      const onError = () => {
        if (broken[name]) return;
        broken[name] = true;
        stream.destroy();
      };
      process[name].on('error', onError);
      targetErrors.push([process[name], onError]);
    }
  }

  // --- main process and helper events ------------------------------------------------------------------------
  let resolveMain!: (exit: MainExit) => void;
  const mainExited = new Promise<MainExit>((resolve) => {
    resolveMain = resolve;
  });
  let spawnError: NodeJS.ErrnoException | undefined;
  // 'exit', not 'close': a leftover that keeps our stdout pipe open must not hold this up.
  const childExited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const reportStream = helperPath ? (child.stdio[3] as Readable | null) : null;
  child.once('exit', (code, signal) => {
    // With the helper, the command's status arrives on fd 3; the helper's own exit can be seen before
    // those bytes are read, so the "no status" case is decided when fd 3 closes (below), not here.
    if (!helperPath) resolveMain({ code, signal });
    else if (!reportStream) resolveMain({ code: null, signal: null });
  });
  child.once('error', (error: NodeJS.ErrnoException) => {
    spawnError = error;
    resolveMain({ code: error.code === 'ENOENT' ? EXIT.NOT_FOUND : EXIT.NOT_EXECUTABLE, signal: null });
  });
  let mainPid: number | undefined;
  let helperPeakKb = 0;
  // The helper's last report ("peak") says it has nothing left to reap, i.e. the subtree is empty. It
  // arrives a millisecond or two before Node delivers the helper's 'exit', and the next run waits on it.
  let helperFinished = false;
  let finishHelper!: () => void;
  const helperDone = new Promise<void>((resolve) => {
    finishHelper = () => {
      helperFinished = true;
      resolve();
    };
  });
  void childExited.then(() => finishHelper());
  if (reportStream) {
    let pending = '';
    reportStream.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const [kind, value, maxRssKb] = line.split(' ');
        helperPeakKb = Math.max(helperPeakKb, Number(maxRssKb ?? (kind === 'peak' ? value : 0)) || 0);
        if (kind === 'pid') mainPid = Number(value);
        if (kind === 'exit') resolveMain({ code: Number(value), signal: null });
        if (kind === 'signal') resolveMain({ code: null, signal: signalName(Number(value)) ?? null });
        if (kind === 'peak') finishHelper();
      }
    });
    // Helper gone without a report: killed from outside.
    reportStream.once('close', () => resolveMain({ code: null, signal: null }));
    // Writing the go byte to a helper that died while parked fails; the close above reports it.
    reportStream.on('error', () => {});
  }

  // --- tracking --------------------------------------------------------------------------------------------
  const rootPid = child.pid ?? 0;
  const rootIdentity: ProcessIdentity = identityOf(rootPid) ?? {
    pid: rootPid,
    start: identityOf(process.pid)?.start ?? 0,
  };
  const tracker =
    rootPid > 0
      ? new RunTracker({
          token: plan.token.value,
          sessionId: rootPid,
          root: rootIdentity,
          helper: helperPath ? rootIdentity : undefined,
        })
      : undefined; // nothing was started (spawn failed): nothing to track, and session 0 is the kernel's

  // --- the turn --------------------------------------------------------------------------------------------
  // Everything above ran while we waited (listeners set, this code compiled); starting is what is left.
  // One sample now runs the sampling code once too (the parked helper has no children yet: it finds
  // nothing), so that the end of the run, which the next run in the queue waits for, runs warm code.
  if (parked && plan.turn) {
    tracker?.sample({ full: true });
    if (!(await plan.turn)) {
      parked.dismiss();
      for (const [target, onError] of targetErrors) target.off('error', onError);
      return undefined;
    }
  }
  tracker?.begin();
  const startedAt = new Date();
  const began = performance.now();
  if (options.logFile)
    log = openAttemptLog(options.logFile, { ...plan, command: [plan.file, ...plan.args], startedAt });
  narrate(
    `attempt ${plan.attempt}/${plan.maxAttempts}: ${[plan.file, ...plan.args].join(' ')} (token ${plan.token.value}, ${helperPath ? 'subreaper helper' : 'no subreaper helper'})`,
  );

  // Started only now that the tracker has begun: its pid mark must predate every process of the run.
  // (A freshly spawned helper is parked too: one way to start.)
  if (helperPath) (child.stdio[3] as Writable | null)?.write('g');
  let peakRssBytes = 0;
  let peakProcesses = 0;
  let timedOut = false;
  let memoryExceeded = false;
  let interrupted: NodeJS.Signals | null = null;
  let done = false;
  const reaped = new Map<number, ReapedProcess>();
  let ending: Promise<void> | undefined;
  let escalate = false;
  let wakeEscalation: (() => void) | undefined;
  const escalated = new Promise<void>((resolve) => {
    wakeEscalation = resolve;
  });

  const sampleNow = (request: SampleRequest = {}): TreeSample => {
    if (!tracker) return { alive: [], rssBytes: 0, costMs: 0, full: true };
    if (helperFinished) tracker.markSubtreeEmpty();
    const sample = tracker.sample(request);
    peakRssBytes = Math.max(peakRssBytes, sample.rssBytes);
    peakProcesses = Math.max(peakProcesses, sample.alive.length);
    if (options.maxMemoryBytes && sample.rssBytes > options.maxMemoryBytes && !memoryExceeded && !ending) {
      memoryExceeded = true;
      notice(
        `memory limit ${formatBytes(options.maxMemoryBytes)} exceeded: the tree uses ${formatBytes(sample.rssBytes)} in ${plural(sample.alive.length, 'process', 'processes')}; ending it`,
      );
      void endTree(killSignal, 'memory');
    }
    return sample;
  };
  /** What is left of the tree; an empty subtree is confirmed by a full sweep (token carriers outside it). */
  const sampleRemaining = (): TreeSample => {
    const sample = sampleNow();
    return sample.alive.length > 0 || sample.full ? sample : sampleNow({ full: true });
  };

  const signalAll = (signal: NodeJS.Signals, targets: OwnedProcess[], reason: EndReason) => {
    for (const target of targets) {
      const command = reaped.get(target.pid)?.command ?? tracker?.commandLine(target.pid) ?? `pid ${target.pid}`;
      if (signalIdentity(target, signal)) {
        const isMain = target.pid === mainPid || (!helperPath && target.pid === rootPid);
        if (!isMain) reaped.set(target.pid, { pid: target.pid, command, signal, reason });
        narrate(`sent ${signal} to ${target.pid} (${command})`);
      }
    }
  };

  /** TERM (or the chosen signal) to every owned process, SIGKILL after the grace period to what is left. */
  const endTreeNow = async (first: NodeJS.Signals, reason: EndReason): Promise<void> => {
    if (!tracker) return;
    if (first === 'SIGKILL') escalate = true;
    // Each process gets the first signal once (by pid and start time): a repeated SIGINT reads as
    // "force quit" to many test runners.
    const sentFirst = new Set<string>();
    const sendFirst = (targets: OwnedProcess[]) => {
      const fresh = targets.filter((p) => !sentFirst.has(`${p.pid}:${p.start}`));
      for (const p of fresh) sentFirst.add(`${p.pid}:${p.start}`);
      signalAll(first, fresh, reason);
    };
    sendFirst(tracker.aliveNow());
    const deadline = performance.now() + graceMs;
    while (!escalate) {
      const alive = sampleRemaining().alive;
      if (alive.length === 0) return;
      // Newcomers forked during the grace period get the first signal too.
      sendFirst(alive);
      const left = deadline - performance.now();
      if (left <= 0) break;
      await pause(Math.min(50, left), escalated);
    }
    for (let round = 0; round < 200; round++) {
      const alive = sampleRemaining().alive;
      if (alive.length === 0) return;
      signalAll('SIGKILL', alive, reason);
      await pause(20);
    }
    notice(`could not end ${plural(tracker.aliveNow().length, 'process', 'processes')} of the run even with SIGKILL`);
  };
  // The body starts on the next microtask, after `ending` is set: it samples, and a sample over the memory
  // limit calls endTree again, which must then see the run already ending (it used to recurse until the
  // stack overflowed when the tree ignored the first signal).
  const endTree = (first: NodeJS.Signals, reason: EndReason): Promise<void> => {
    ending ??= Promise.resolve().then(() => endTreeNow(first, reason));
    return ending;
  };

  options.controller?.listen((signal) => {
    if (!interrupted) {
      interrupted = signal;
      narrate(`received ${signal}: forwarding it to the whole tree`);
      void endTree(signal, 'interrupt');
    } else {
      narrate(`received ${signal} again: killing the whole tree`);
      void endTree(signal, 'interrupt');
      escalate = true;
      wakeEscalation?.();
    }
  });
  if (options.controller?.interrupted && !interrupted) options.controller.interrupt(options.controller.interrupted);

  // Background sampling for peaks and the memory limit while the main command runs, paced by what a
  // sweep costs; after it ends, the leftover loop below samples instead.
  let mainEnded = false;
  const timeoutTimer =
    options.timeoutMs && options.timeoutMs > 0
      ? longTimeout(options.timeoutMs, () => {
          if (done || ending) return;
          if (mainEnded && !options.waitAll) {
            // The command itself finished in time; what is left are leftovers, ended as they would be
            // when --linger runs out (and reported so), without turning the run into a timeout.
            narrate(`timeout after ${formatDuration(options.timeoutMs ?? 0)}: ending the leftovers now`);
            void endTree(killSignal, 'linger');
            return;
          }
          timedOut = true;
          notice(`timeout after ${formatDuration(options.timeoutMs ?? 0)}: sending ${killSignal} to the whole tree`);
          void endTree(killSignal, 'timeout');
        })
      : undefined;

  const sampler = (async () => {
    while (!mainEnded && !done) {
      const { costMs } = sampleNow();
      await pause(Math.min(1000, Math.max(100, costMs * 10)), mainExited);
    }
  })();

  const main = await mainExited;
  mainEnded = true;
  const mainEndedAt = performance.now();
  narrate(
    `main process ended (${main.signal ? `signal ${main.signal}` : `exit ${main.code}`}) after ${formatDuration(mainEndedAt - began)}`,
  );

  // --- leftovers -------------------------------------------------------------------------------------------
  let announcedWait = false;
  for (;;) {
    if (ending) {
      await ending;
      break;
    }
    const { alive, costMs } = sampleRemaining();
    if (alive.length === 0) break;
    if (!announcedWait) {
      announcedWait = true;
      narrate(
        `${plural(alive.length, 'process', 'processes')} still running after the main one: ${options.waitAll ? 'waiting for them (--wait-all)' : `giving them ${formatDuration(lingerMs)}`}`,
      );
    }
    if (!options.waitAll && performance.now() - mainEndedAt >= lingerMs) {
      await endTree(killSignal, 'linger');
      break;
    }
    // The helper finishes once nothing is left to reap, which ends the wait early.
    // (Once it has, helperDone has settled and would wake us at once: plain pauses from then on.)
    await pause(Math.max(25, costMs * 4), ...(helperFinished ? [] : [helperDone]));
  }
  done = true;
  timeoutTimer?.clear();
  await sampler;
  options.controller?.listen(undefined);

  // The helper finishes by itself once it has nothing left to reap; make sure it does. (After its last
  // report it only returns from main(): its 'exit' is not waited for.)
  if (helperPath && !helperFinished && rootPid > 0) {
    await pause(1000, helperDone);
    if (!helperFinished) {
      signalIdentity(rootIdentity, 'SIGKILL');
      await childExited;
    }
  }
  // Output still buffered in the pipes is read to the end; a pipe still held open after that belongs to a
  // process we could not see (only possible without the helper) and is closed rather than waited for.
  await pause(500, Promise.all(streamsClosed));
  for (const stream of [child.stdout, child.stderr, reportStream]) stream?.destroy();
  for (const [target, onError] of targetErrors) target.off('error', onError);

  for (const leftover of reaped.values()) {
    if (leftover.reason === 'linger')
      notice(`ended leftover process ${leftover.pid} (${leftover.command}) with ${leftover.signal}`);
  }

  const signalEnded = main.signal ?? null;
  let exitCode: number;
  if (spawnError) notice(`could not start the command: ${spawnError.message}`);
  if (interrupted) exitCode = 128 + signalNumber(interrupted);
  else if (timedOut) exitCode = EXIT.TIMEOUT;
  else if (memoryExceeded) exitCode = EXIT.MEMORY_EXCEEDED;
  else if (signalEnded) exitCode = 128 + signalNumber(signalEnded);
  else if (main.code !== null) exitCode = main.code;
  else {
    notice('lost track of the main process: it ended without a status (was the helper killed?)');
    exitCode = EXIT.USAGE;
  }
  // A command shorter than one sampling interval is never sampled; the helper's wait4() figures are a floor.
  peakRssBytes = Math.max(peakRssBytes, helperPeakKb * 1024);
  if (mainPid !== undefined || (!helperPath && !spawnError)) peakProcesses = Math.max(peakProcesses, 1);
  const durationMs = Math.round(performance.now() - began);
  const result: AttemptResult = {
    attempt: plan.attempt,
    exitCode,
    signal: signalEnded,
    timedOut,
    memoryExceeded,
    interrupted,
    startedAt: startedAt.toISOString(),
    durationMs,
    peakRssBytes,
    peakProcesses,
    reaped: [...reaped.values()],
  };
  if (options.capture) {
    result.stdout = Buffer.concat(captured.stdout).toString('utf8');
    result.stderr = Buffer.concat(captured.stderr).toString('utf8');
  }
  narrate(
    `attempt ${plan.attempt} finished: exit ${exitCode} in ${formatDuration(durationMs)}; peak ${formatBytes(peakRssBytes)} in ${plural(peakProcesses, 'process', 'processes')}; ${reaped.size} ended by seq-test`,
  );
  log?.finish(result);
  return result;
}
