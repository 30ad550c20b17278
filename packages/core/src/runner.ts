import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AttemptLog, openAttemptLog } from './attempt-log.js';
import { assertSupportedPlatform, EXIT, SeqTestError } from './errors.js';
import { identityOf, type ProcessIdentity, signalIdentity } from './identity.js';
import { resolveCommand } from './resolve-command.js';
import { signalName, signalNumber } from './signals.js';
import { subreaperPath } from './subreaper.js';
import { createToken, extendChain, type RunToken, TOKEN_ENV } from './token.js';
import { type OwnedProcess, RunTracker, type TreeSample } from './tracker.js';
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

  interrupt(signal: NodeJS.Signals): void {
    this.received ??= signal;
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

/**
 * Runs a command and waits for its whole process tree, enforcing timeout, memory limit and retries.
 * Throws SeqTestError (exit 125/126/127) before spawning when the command cannot run at all.
 */
export async function execTree(options: ExecOptions): Promise<ExecResult> {
  assertSupportedPlatform();
  const [file, ...args] = options.command;
  if (file === undefined) throw new SeqTestError('no command given: put it after --, e.g. seq-test exec -- npm test');
  const cwd = options.cwd ?? process.cwd();
  const resolved = resolveCommand(file, cwd, (options.env ?? process.env).PATH);
  const self = identityOf(process.pid);
  if (!self) throw new SeqTestError('cannot read our own process entry (is /proc mounted?)');
  const token = options.token ?? createToken(self);
  const began = performance.now();
  const attempts: AttemptResult[] = [];
  const maxAttempts = 1 + (options.retries ?? 0);
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const result = await runAttempt(options, { file, resolved, args, cwd, token, attempt, maxAttempts });
    attempts.push(result);
    const failed = result.exitCode !== 0;
    if (!failed || result.interrupted || options.controller?.interrupted || attempt === maxAttempts) break;
    options.onNarrate?.(
      `attempt ${attempt} failed (exit ${result.exitCode}); ${maxAttempts - attempt} retr${maxAttempts - attempt === 1 ? 'y' : 'ies'} left`,
    );
    if (options.retryDelayMs) await sleep(options.retryDelayMs);
    if (options.controller?.interrupted) break;
  }
  const last = attempts[attempts.length - 1] as AttemptResult;
  return {
    command: options.command,
    token: token.value,
    exitCode: last.exitCode,
    signal: last.signal,
    timedOut: last.timedOut,
    memoryExceeded: last.memoryExceeded,
    interrupted: last.interrupted,
    durationMs: Math.round(performance.now() - began),
    peakRssBytes: Math.max(...attempts.map((a) => a.peakRssBytes)),
    peakProcesses: Math.max(...attempts.map((a) => a.peakProcesses)),
    attempts,
  };
}

interface AttemptPlan {
  file: string;
  resolved: string;
  args: string[];
  cwd: string;
  token: RunToken;
  attempt: number;
  maxAttempts: number;
}

interface MainExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

async function runAttempt(options: ExecOptions, plan: AttemptPlan): Promise<AttemptResult> {
  const killSignal = options.killSignal ?? DEFAULTS.killSignal;
  const graceMs = options.graceMs ?? DEFAULTS.graceMs;
  const lingerMs = options.lingerMs ?? DEFAULTS.lingerMs;
  const narrate = (line: string) => options.onNarrate?.(line);
  const notice = (line: string) => options.onNotice?.(line);
  const startedAt = new Date();
  const began = performance.now();
  const helperPath = subreaperPath(options.env ?? process.env);
  const piped = Boolean(options.capture || options.logFile);
  const env = { ...(options.env ?? process.env) };
  env[TOKEN_ENV] = extendChain(env[TOKEN_ENV], plan.token);
  const log: AttemptLog | undefined = options.logFile
    ? openAttemptLog(options.logFile, { ...plan, command: [plan.file, ...plan.args], startedAt })
    : undefined;

  narrate(
    `attempt ${plan.attempt}/${plan.maxAttempts}: ${[plan.file, ...plan.args].join(' ')} (token ${plan.token.value}, ${helperPath ? 'subreaper helper' : 'no subreaper helper'})`,
  );
  const child: ChildProcess = helperPath
    ? spawn(helperPath, [plan.resolved, plan.file, ...plan.args], {
        cwd: plan.cwd,
        env,
        detached: true,
        stdio: ['inherit', piped ? 'pipe' : 'inherit', piped ? 'pipe' : 'inherit', 'pipe'],
      })
    : spawn(plan.resolved, plan.args, {
        cwd: plan.cwd,
        env,
        argv0: plan.file,
        detached: true,
        stdio: ['inherit', piped ? 'pipe' : 'inherit', piped ? 'pipe' : 'inherit'],
      });

  // --- output --------------------------------------------------------------------------------------------
  const captured = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const streamsClosed: Promise<void>[] = [];
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = child[name];
    if (!stream) continue;
    const echo = name === 'stdout' ? options.echoStdout !== false : options.echoStderr !== false;
    stream.on('data', (chunk: Buffer) => {
      if (echo) process[name].write(chunk);
      if (options.capture) captured[name].push(chunk);
      log?.output(name, chunk);
    });
    streamsClosed.push(new Promise((resolve) => stream.once('close', () => resolve())));
  }

  // --- main process and helper events ------------------------------------------------------------------------
  let resolveMain!: (exit: MainExit) => void;
  const mainExited = new Promise<MainExit>((resolve) => {
    resolveMain = resolve;
  });
  let spawnError: NodeJS.ErrnoException | undefined;
  const childExited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let childGone = false;
  child.once('exit', (code, signal) => {
    childGone = true;
    if (!helperPath) resolveMain({ code, signal });
    else resolveMain({ code: null, signal: null }); // helper gone without a report: killed from outside
  });
  child.once('error', (error: NodeJS.ErrnoException) => {
    spawnError = error;
    childGone = true;
    resolveMain({ code: error.code === 'ENOENT' ? EXIT.NOT_FOUND : EXIT.NOT_EXECUTABLE, signal: null });
  });
  let mainPid: number | undefined;
  child.stdio[3]?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      const [kind, value] = line.split(' ');
      if (kind === 'pid') mainPid = Number(value);
      if (kind === 'exit') resolveMain({ code: Number(value), signal: null });
      if (kind === 'signal') resolveMain({ code: null, signal: signalName(Number(value)) ?? null });
    }
  });

  // --- tracking --------------------------------------------------------------------------------------------
  const rootPid = child.pid ?? 0;
  const rootIdentity: ProcessIdentity = identityOf(rootPid) ?? {
    pid: rootPid,
    start: identityOf(process.pid)?.start ?? 0,
  };
  const tracker = new RunTracker({
    token: plan.token.value,
    sessionId: rootPid,
    root: rootIdentity,
    helper: helperPath ? rootIdentity : undefined,
  });
  let peakRssBytes = 0;
  let peakProcesses = 0;
  let timedOut = false;
  let memoryExceeded = false;
  let interrupted: NodeJS.Signals | null = null;
  let done = false;
  const reaped = new Map<number, ReapedProcess>();
  let ending: Promise<void> | undefined;
  let killNow: (() => void) | undefined;

  const sampleNow = (): TreeSample => {
    const sample = tracker.sample();
    peakRssBytes = Math.max(peakRssBytes, sample.rssBytes);
    peakProcesses = Math.max(peakProcesses, sample.alive.length);
    if (options.maxMemoryBytes && sample.rssBytes > options.maxMemoryBytes && !ending) {
      memoryExceeded = true;
      notice(
        `memory limit ${formatBytes(options.maxMemoryBytes)} exceeded: the tree uses ${formatBytes(sample.rssBytes)} in ${sample.alive.length} processes; ending it`,
      );
      void endTree(killSignal, 'memory');
    }
    return sample;
  };

  /** TERM (or the chosen signal) to every owned process, SIGKILL after the grace period to what is left. */
  const endTree = (first: NodeJS.Signals, reason: EndReason): Promise<void> => {
    ending ??= (async () => {
      let escalate = first === 'SIGKILL';
      const escalated = new Promise<void>((resolve) => {
        killNow = () => {
          escalate = true;
          resolve();
        };
      });
      const signalAll = (signal: NodeJS.Signals, targets: OwnedProcess[]) => {
        for (const target of targets) {
          const command = reaped.get(target.pid)?.command ?? tracker.commandLine(target.pid);
          if (signalIdentity(target, signal)) {
            const isMain = target.pid === mainPid || (!helperPath && target.pid === rootPid);
            if (!isMain) reaped.set(target.pid, { pid: target.pid, command, signal, reason });
            narrate(`sent ${signal} to ${target.pid} (${command})`);
          }
        }
      };
      signalAll(first, tracker.aliveNow());
      const deadline = performance.now() + graceMs;
      while (!escalate) {
        const alive = sampleNow().alive;
        if (alive.length === 0) return;
        // Newcomers forked during the grace period get the first signal too.
        signalAll(
          first,
          alive.filter((p) => !reaped.has(p.pid) && p.pid !== mainPid),
        );
        const left = deadline - performance.now();
        if (left <= 0) break;
        await Promise.race([sleep(Math.min(50, left)), escalated]);
      }
      for (let round = 0; round < 200; round++) {
        const alive = tracker.aliveNow();
        if (alive.length === 0) return;
        signalAll('SIGKILL', alive);
        await sleep(20);
      }
      notice(`could not end ${tracker.aliveNow().length} process(es) of the run even with SIGKILL`);
    })();
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
      killNow?.();
    }
  });
  if (options.controller?.interrupted && !interrupted) options.controller.interrupt(options.controller.interrupted);

  const timeoutTimer =
    options.timeoutMs && options.timeoutMs > 0
      ? setTimeout(() => {
          if (done) return;
          timedOut = true;
          notice(`timeout after ${formatDuration(options.timeoutMs ?? 0)}: sending ${killSignal} to the whole tree`);
          void endTree(killSignal, 'timeout');
        }, options.timeoutMs)
      : undefined;

  // Background sampling for peaks and the memory limit while the main command runs, paced by what a
  // sweep costs; after it ends, the leftover loop below samples instead.
  let mainEnded = false;
  const sampler = (async () => {
    while (!mainEnded && !done) {
      const { costMs } = sampleNow();
      await Promise.race([sleep(Math.min(1000, Math.max(100, costMs * 10))), mainExited]);
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
    const { alive, costMs } = sampleNow();
    if (alive.length === 0) break;
    if (!announcedWait) {
      announcedWait = true;
      narrate(
        `${alive.length} process(es) still running after the main one: ${options.waitAll ? 'waiting for them (--wait-all)' : `giving them ${formatDuration(lingerMs)}`}`,
      );
    }
    if (!options.waitAll && performance.now() - mainEndedAt >= lingerMs) {
      await endTree(killSignal, 'linger');
      break;
    }
    // The helper exits once nothing is left to reap, which ends the wait early; childGone guards
    // against racing an already-settled promise in a loop that would never yield.
    await (childGone ? sleep(Math.max(25, costMs * 4)) : Promise.race([sleep(Math.max(25, costMs * 4)), childExited]));
  }
  done = true;
  clearTimeout(timeoutTimer);
  await sampler;
  options.controller?.listen(undefined);

  // The helper exits by itself once it has nothing left to reap; make sure it does.
  if (helperPath && !childGone) {
    await Promise.race([childExited, sleep(1000)]);
    if (!childGone) {
      signalIdentity(rootIdentity, 'SIGKILL');
      await childExited;
    }
  }
  await Promise.race([Promise.all(streamsClosed), sleep(500)]);

  for (const leftover of reaped.values()) {
    if (leftover.reason === 'linger')
      notice(`ended leftover process ${leftover.pid} (${leftover.command}) with ${leftover.signal}`);
  }

  const signalEnded = main.signal ?? null;
  let exitCode: number;
  if (interrupted) exitCode = 128 + signalNumber(interrupted);
  else if (timedOut) exitCode = EXIT.TIMEOUT;
  else if (memoryExceeded) exitCode = EXIT.MEMORY_EXCEEDED;
  else if (signalEnded) exitCode = 128 + signalNumber(signalEnded);
  else if (main.code !== null) exitCode = main.code;
  else {
    notice(
      spawnError
        ? `could not start the command: ${spawnError.message}`
        : 'lost track of the main process: it ended without a status',
    );
    exitCode = EXIT.USAGE;
  }
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
    `attempt ${plan.attempt} finished: exit ${exitCode} in ${formatDuration(durationMs)}; peak ${formatBytes(peakRssBytes)} in ${peakProcesses} process(es); ${reaped.size} ended by seq-test`,
  );
  log?.finish(result);
  return result;
}
