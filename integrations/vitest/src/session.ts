import { setTimeout as sleep } from 'node:timers/promises';
import {
  type AutoHolder,
  acquireLock,
  autoFromSettings,
  endProcesses,
  endProcessesSync,
  extendChain,
  formatDuration,
  identityKey,
  isAlive,
  type LockHandle,
  loadProjectConfig,
  onProcessExit,
  SeqTestError,
  say,
  signalNumber,
  TOKEN_ENV,
  trustedChain,
  WaitLine,
  watchParentDeath,
} from '@seq-test/core/internal';
import { enforceOneWorker } from './enforce.js';
import { type OwnedProcess, ownedProcesses } from './owned.js';
import { parallelRequests, type RawTestConfig } from './requests.js';
import { majorOf, type ProjectLike, type ReporterLike, type VitestLike } from './vitest-shapes.js';

export interface SeqTestOptions {
  /** Lock key (default: $SEQ_TEST_KEY, else the git top-level, else the current directory) — as `seq-test run`. */
  key?: string;
  /** How many runs of this key may hold the lock at once (default 1). */
  slots?: number;
  /** Give up (the run fails) after waiting this long for the lock. Default: wait as long as it takes. */
  waitTimeoutMs?: number;
  /** Do not print the queue line while waiting. */
  quiet?: boolean;
  /** Force one test file at a time (default true). With false only the lock and the reaping remain. */
  singleWorker?: boolean;
  /** End the processes a run leaves behind (default true). */
  reap?: boolean;
  /** How long leftovers may take to end by themselves after a run before they are ended (default 25). */
  lingerMs?: number;
  /** Grace between SIGTERM and SIGKILL when ending leftovers (default 1000). */
  reapGraceMs?: number;
}

const EXIT_GRACE_MS = 500;
/** Leftovers get this long to finish ending by themselves (a test that killed a child without awaiting it). */
const DEFAULT_LINGER_MS = 25;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * One per Vitest process, shared (through globalThis) by the plugin instance(s) loaded with the config and
 * by the global-setup module, which Vitest loads through its own module runner as a separate copy.
 *
 * A *session* runs from the first global setup to the last global-setup teardown (one `vitest run`, or one
 * watch session until quit or a config restart). A *run* is one pass over test files: the whole session in
 * `vitest run`; each rerun in watch mode. The lock is held per run, never while watch mode sits idle.
 */
export class Session {
  private options: SeqTestOptions = {};
  private handle: LockHandle | undefined;
  private stopParentWatch: () => void = () => {};
  private auto: AutoHolder | undefined;
  private acquiring: Promise<void> | undefined;
  /** SEQ_TEST_TOKEN as it was before any run of ours (an outer `seq-test run`'s chain, or nothing). */
  private readonly baseChain = process.env[TOKEN_ENV] || undefined;
  /** Tokens of this session's runs: processes carrying one of them are ours. */
  private readonly tokens = new Set<string>();
  /** Processes started by global setup (watch mode): they serve every rerun and end with the session. */
  private readonly spared = new Set<string>();
  private snapshotPending = false;
  private runs = 0;
  private setups = 0;
  private vitest: VitestLike | undefined;
  private processHooks = false;
  private runMode = false;
  /** The last run ended on its own (not interrupted): its memory peak is worth recording (`"slots": "auto"`). */
  private runCompleted = false;
  /** The root config file Vite resolved (null: none), part of the command's fingerprint in `"slots": "auto"`. */
  private configFile: string | null | undefined;
  private announced = false;
  private disabledSaid = false;
  /** The root test config as the config file gave it, captured by the plugin's config hook. */
  rawConfig: RawTestConfig | undefined;

  readonly reporter: ReporterLike = {
    onTestRunStart: () => this.runStarted(),
    onTestModuleQueued: () => this.testsStarted(),
    onCollected: () => this.testsStarted(),
    // Vitest 3+: (testModules, unhandledErrors, reason), reason being 'passed', 'failed' or 'interrupted'.
    onTestRunEnd: (...args: unknown[]) => this.runEnded(args[2]),
  };

  configure(options: SeqTestOptions): void {
    this.options = { ...this.options, ...options };
  }

  private get disabled(): boolean {
    if (process.env.SEQ_TEST_DISABLE !== '1') return false;
    if (!this.disabledSaid) {
      this.disabledSaid = true;
      say('SEQ_TEST_DISABLE=1: running without the lock');
    }
    return true;
  }

  // --- entry points ------------------------------------------------------------------------------------

  /** The plugin's configResolved saw a Vitest run without watch mode. */
  noteRunMode(): void {
    if (isVitestMain()) this.runMode = true;
  }

  /** The plugin's configResolved: the config file Vite loaded (undefined for none). The root's comes first. */
  noteConfigFile(file: string | undefined): void {
    if (isVitestMain() && this.configFile === undefined) this.configFile = file ?? null;
  }

  /**
   * From the plugin's configureServer, before Vitest creates its projects. In `vitest run` (one run per
   * process) the lock is taken here, so that it covers everything the run does, including the global
   * setups of projects that do not inherit the root config (Vitest runs those before the root's). In
   * watch mode (or when the mode is not known) the lock waits for the run hooks: never while idle.
   */
  async serverStarting(): Promise<void> {
    if (this.runMode) await this.ensureHeld();
  }

  /** From the `configureVitest` hook (Vitest 3.1+; once per project in Vitest 5). */
  configureVitest(vitest: VitestLike): void {
    this.attach(vitest);
    // Reporters are (re)created after configureVitest; join them as soon as they exist, so that the very
    // first run start is seen (before anyone's global setup).
    vitest.onAfterSetServer?.(() => {
      this.installReporter(vitest);
      this.enforce();
    });
  }

  /** From the global setup the plugin prepends; Vitest may run it once per project (refcounted). */
  async globalSetup(project: ProjectLike): Promise<() => Promise<void>> {
    this.attach(project.vitest);
    // Joining the reporters mid-run (no configureVitest: Vitest 3.0, or a root config with projects in
    // Vitest 3/4) means this run's start went unseen: count it here.
    if (this.installReporter(project.vitest)) this.runs++;
    this.enforce();
    await this.ensureHeld();
    this.setups++;
    this.snapshotPending = Boolean(this.vitest?.config.watch);
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      this.setups--;
      if (this.setups === 0) await this.finish();
    };
  }

  private async runStarted(): Promise<void> {
    this.runs++;
    this.runCompleted = false;
    this.enforce();
    await this.ensureHeld();
  }

  /** The first test file of the session's first run is about to start: global setup is over. */
  private testsStarted(): void {
    if (!this.snapshotPending) return;
    this.snapshotPending = false;
    for (const p of this.owned()) this.spared.add(identityKey(p));
  }

  private async runEnded(reason: unknown): Promise<void> {
    if (this.runs > 0) this.runs--;
    if (this.runs > 0) return;
    // Cancelled (Ctrl-C, --bail, a signal): a partial run says nothing about what a whole run needs.
    this.runCompleted = reason !== 'interrupted';
    // In `vitest run` the last global-setup teardown ends the session (after the user's teardowns, which
    // may still need their servers); in watch mode each run ends here.
    if (this.setups > 0 && !this.vitest?.config.watch) return;
    await this.reap(this.spared);
    this.release(this.runCompleted);
    await this.renewPool();
  }

  private async finish(): Promise<void> {
    this.snapshotPending = false;
    await this.reap(undefined);
    // `vitest run`: the run ended (onTestRunEnd) before the global teardowns that end the session.
    this.release(this.runCompleted);
    this.runCompleted = false;
    this.tokens.clear();
    this.spared.clear();
    this.runs = 0;
  }

  // --- configuration -----------------------------------------------------------------------------------

  private attach(vitest: VitestLike): void {
    this.vitest = vitest;
  }

  private installReporter(vitest: VitestLike): boolean {
    const reporters = vitest.reporters;
    if (!Array.isArray(reporters) || reporters.includes(this.reporter)) return false;
    reporters.push(this.reporter);
    return true;
  }

  /** One test file at a time, on the resolved config of the root and every project; says what it overrode. */
  private enforce(): void {
    const vitest = this.vitest;
    if (!vitest || this.options.singleWorker === false) return;
    const projects = [...(vitest.projects ?? [])];
    const root = safe(() => vitest.getRootProject?.());
    if (root && !projects.includes(root)) projects.push(root);
    const changes = enforceOneWorker(vitest, projects);
    if (this.announced) return;
    // Say once what was overridden: by source where known, plus what only the resolved config showed.
    const asked = parallelRequests(this.rawConfig);
    const covered = (change: string) =>
      asked.length > 0 && /^(project "[^"]*": )?(maxWorkers|poolOptions)/.test(change);
    const items = [...asked, ...changes.filter((change) => !covered(change))];
    if (items.length === 0) return;
    this.announced = true;
    say(`one test file at a time: ${items.join(', ')}`);
  }

  // --- the lock ----------------------------------------------------------------------------------------

  private async ensureHeld(): Promise<void> {
    if (this.handle || this.disabled) return;
    this.acquiring ??= this.acquire().finally(() => {
      this.acquiring = undefined;
    });
    return this.acquiring;
  }

  private async acquire(): Promise<void> {
    this.installProcessHooks();
    const env = { ...process.env };
    if (this.baseChain) env[TOKEN_ENV] = this.baseChain;
    else delete env[TOKEN_ENV];
    const waitLine = new WaitLine(process.stderr, this.options.quiet);
    let handle: LockHandle;
    try {
      // package.json "seqTest" / .seqtestrc.json, as `seq-test run`, Jest and pytest read them; an explicit
      // key (plugin option, $SEQ_TEST_KEY) wins over the file.
      const settings = loadProjectConfig(process.cwd())?.config ?? {};
      // "slots": "auto" (unless the plugin's own slots option says otherwise): memory-aware admission.
      const auto =
        this.options.slots === undefined
          ? autoFromSettings(
              settings,
              {
                argv: process.argv.slice(1),
                cwd: process.cwd(),
                runner: 'vitest',
                ...(this.configFile ? { config: this.configFile } : {}),
              },
              (message) => say(`warning: ${message}`),
            )
          : { slots: this.options.slots };
      this.auto = auto.holder;
      handle = await acquireLock({
        key: this.options.key ?? (process.env.SEQ_TEST_KEY ? undefined : settings.key),
        slots: auto.slots,
        ...(auto.holder ? { admission: auto.holder.hook } : {}),
        env,
        command: commandText(),
        waitTimeoutMs: this.options.waitTimeoutMs,
        onWait: (info) => waitLine.update(info),
        // Off a terminal the line is printed once: no reads of the queue on a timer while we wait.
        waitReportMs: waitLine.reportEveryMs,
        onWarning: (message) => say(`warning: ${message}`),
      });
    } catch (error) {
      waitLine.done(undefined);
      if (error instanceof SeqTestError) say(`error: ${error.message}`);
      throw error;
    }
    waitLine.done(handle.waitedMs >= 1 ? `our turn after ${formatDuration(handle.waitedMs)}` : undefined);
    this.handle = handle;
    // Re-parented while holding (`timeout 60 npx vitest` killed npx): end the run as Ctrl-C would.
    this.stopParentWatch = watchParentDeath((parent) => {
      say(`the process that started Vitest (pid ${parent}) is gone: ending the run`);
      process.kill(process.pid, 'SIGTERM');
    });
    this.auto?.started(handle.queue, handle.ticket.name);
    this.tokens.add(handle.token.value);
    // Everything started from now on (global setups, workers, what the tests spawn) carries the token.
    process.env[TOKEN_ENV] = extendChain(trustedChain(this.baseChain), handle.token);
  }

  /** `completed`: the run ended normally (its memory peak is worth recording for `"slots": "auto"`). */
  private release(completed = false): void {
    this.auto?.finished(completed && this.handle !== undefined);
    this.auto = undefined;
    const handle = this.handle;
    this.handle = undefined;
    this.stopParentWatch();
    if (this.baseChain) process.env[TOKEN_ENV] = this.baseChain;
    else delete process.env[TOKEN_ENV];
    handle?.release();
  }

  /**
   * Vitest 3 builds its worker pool once, with the environment of the first run, and reuses it: later
   * workers would carry a stale token. Closing it after each watch run makes the next run build a fresh one
   * (and leaves no idle workers while watch mode waits).
   */
  private async renewPool(): Promise<void> {
    const vitest = this.vitest;
    if (!vitest || majorOf(vitest) !== 3 || !vitest.config.watch || !vitest.pool) return;
    const pool = vitest.pool;
    vitest.pool = undefined;
    await pool.close?.();
  }

  // --- leftovers ---------------------------------------------------------------------------------------

  private owned(spare?: ReadonlySet<string>): OwnedProcess[] {
    return ownedProcesses({ tokens: this.tokens, vitestDist: this.vitest?.distPath, spare });
  }

  /** Ends what the tests left running (not Vitest's own workers), after a short grace to end by themselves. */
  private async reap(spare: ReadonlySet<string> | undefined): Promise<void> {
    if (this.options.reap === false || this.tokens.size === 0) return;
    for (let round = 0; round < 3; round++) {
      let left = this.owned(spare).filter((p) => !p.worker);
      if (left.length === 0) return;
      const deadline = performance.now() + (this.options.lingerMs ?? DEFAULT_LINGER_MS);
      while (left.length > 0 && performance.now() < deadline) {
        await sleep(25);
        left = left.filter((p) => isAlive(p));
      }
      const ended = await endProcesses(left, this.options.reapGraceMs ?? 1000);
      for (const p of ended) say(`ended leftover process ${p.pid} (${p.command}) with ${p.signal}`);
    }
  }

  // --- process exit and signals ------------------------------------------------------------------------

  /**
   * Vitest 4/5 exit 1 ms after SIGINT/SIGTERM, and a global setup may call process.exit(): no promise
   * settles any more, so the cleanup at exit is synchronous. It is a 'reap' hook of core's exit-hook
   * registry, which runs it before the lock's own 'release' hook.
   */
  private installProcessHooks(): void {
    if (this.processHooks) return;
    this.processHooks = true;
    onProcessExit('reap', () => this.cleanupAtExit());
    for (const signal of SIGNALS) {
      // Vitest handles SIGINT and SIGTERM itself (and exits); nobody handles SIGHUP, and after Vitest
      // closed nobody handles any: a listener stops Node's default, so make sure the process still ends.
      process.on(signal, () => {
        process.exitCode ??= 128 + signalNumber(signal);
        setTimeout(() => process.exit(), 200).unref();
      });
    }
  }

  private cleanupAtExit(): void {
    if (!this.handle && this.tokens.size === 0) return;
    try {
      if (this.options.reap !== false) {
        // Vitest's workers too: the Vitest process is going, they would be orphaned.
        for (const p of endProcessesSync(this.owned(undefined), EXIT_GRACE_MS)) {
          if (!p.worker) say(`ended leftover process ${p.pid} (${p.command}) with ${p.signal}`);
        }
      }
    } catch {
      // Exiting anyway: the next waiter reaps what a dead run left.
    }
    this.release();
    this.tokens.clear();
  }
}

/** The Vitest process itself, not a test worker nor something a test started (those inherit VITEST=true). */
function isVitestMain(): boolean {
  return process.env.VITEST === 'true' && !process.env.VITEST_WORKER_ID && !process.env.VITEST_POOL_ID;
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** What other waiters see in the queue line: `vitest run --maxWorkers 4`. */
function commandText(): string {
  return ['vitest', ...process.argv.slice(2)].join(' ');
}

const KEY = Symbol.for('@seq-test/vitest/session');

/** The session of this process (one per process, whichever copy of this module asks). */
export function session(): Session {
  const holder = globalThis as unknown as Record<symbol, Session | undefined>;
  holder[KEY] ??= new Session();
  return holder[KEY];
}
