import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { EXIT } from '../errors.js';
import type { MainOutcome } from './attempt-state.js';
import { describeHelperError, readHelperReports } from './helper-reports.js';

/**
 * Follows the main command of one attempt: how it ended, its pid and peak memory as the helper reports
 * them, and when the helper has nothing left to reap. Without the helper, Node's own events say it all.
 */
export class MainWatch {
  /** Settles once, with how the main command ended. */
  readonly ended: Promise<MainOutcome>;
  /** The spawned process (helper or command) exited or could not be spawned. ('exit', not 'close': a
   * leftover that keeps our stdout pipe open must not hold this up.) */
  readonly exited: Promise<void>;
  /** Settles when the helper says it has nothing left to reap (its last report), or it is gone. */
  readonly helperDone: Promise<void>;
  /** The main command's pid (with the helper: as it reported it). */
  pid: number | undefined;
  /** The helper's wait4() figure for the main command's (and the reaped orphans') peak memory, in KiB. */
  helperPeakKb = 0;
  /** Whether helperDone has settled. */
  helperFinished = false;
  /** False once the helper reported that it could not become a subreaper: its "peak" then no longer
   * means that the run's subtree is empty (orphans went to init). */
  helperIsSubreaper = true;
  /** What the helper reported as failed, one notice each. */
  readonly helperProblems: string[] = [];
  spawnError: NodeJS.ErrnoException | undefined;
  /** The helper's report channel (fd 3). */
  readonly reports: Readable | null;

  constructor(child: ChildProcess, withHelper: boolean) {
    let resolveMain!: (outcome: MainOutcome) => void;
    this.ended = new Promise((resolve) => {
      resolveMain = resolve;
    });
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    this.reports = withHelper ? (child.stdio[3] as Readable | null) : null;
    child.once('exit', (code, signal) => {
      // With the helper, the command's status arrives on fd 3; the helper's own exit can be seen before
      // those bytes are read, so the "no status" case is decided when fd 3 closes (below), not here.
      if (withHelper && this.reports) return;
      if (withHelper || (signal === null && code === null)) resolveMain({ kind: 'lost' });
      else resolveMain(signal ? { kind: 'signalled', signal } : { kind: 'exited', code: code as number });
    });
    child.once('error', (error: NodeJS.ErrnoException) => {
      this.spawnError = error;
      const code = error.code === 'ENOENT' ? EXIT.NOT_FOUND : EXIT.NOT_EXECUTABLE;
      resolveMain({ kind: 'not-started', error, code });
    });
    // The helper's last report ("peak") says it has nothing left to reap, i.e. the subtree is empty. It
    // arrives a millisecond or two before Node delivers the helper's 'exit', and the next run waits on it.
    let finishHelper!: () => void;
    this.helperDone = new Promise<void>((resolve) => {
      finishHelper = () => {
        this.helperFinished = true;
        resolve();
      };
    });
    if (!withHelper) this.pid = child.pid;
    void this.exited.then(() => finishHelper());
    if (this.reports) {
      readHelperReports(this.reports, (report) => {
        switch (report.kind) {
          case 'pid':
            this.pid = report.pid;
            break;
          case 'exit':
            this.peak(report.maxRssKb);
            resolveMain({ kind: 'exited', code: report.code });
            break;
          case 'signal':
            this.peak(report.maxRssKb);
            resolveMain(report.signal ? { kind: 'signalled', signal: report.signal } : { kind: 'lost' });
            break;
          case 'peak':
            this.peak(report.maxRssKb);
            finishHelper();
            break;
          case 'error': {
            this.helperProblems.push(describeHelperError(report));
            if (report.step === 'subreaper') this.helperIsSubreaper = false;
            // Nothing was started: seq-test's own failure, not the command's.
            if (report.step === 'fork' || report.step === 'usage') {
              const error: NodeJS.ErrnoException = new Error(`the subreaper helper failed (${report.step})`);
              if (report.code) error.code = report.code;
              resolveMain({ kind: 'not-started', error, code: EXIT.USAGE });
            }
            break;
          }
        }
      });
      // Helper gone without a report: killed from outside.
      this.reports.once('close', () => resolveMain({ kind: 'lost' }));
      // Writing the go byte to a helper that died while parked fails; the close above reports it.
      this.reports.on('error', () => {});
    }
  }

  private peak(kb: number): void {
    this.helperPeakKb = Math.max(this.helperPeakKb, kb);
  }
}
