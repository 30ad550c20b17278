import type { ProcessIdentity } from './identity.js';
import { groupWitnessed, identityKey } from './ownership.js';
import { isGone, type PidCounter, type ProcessInfo, type ProcessTable, processTable } from './proc/index.js';
import { chainHas, TOKEN_ENV } from './token.js';

export interface OwnedProcess extends ProcessIdentity {
  comm: string;
}

export interface TreeSample {
  /** Owned processes alive at this sample (the subreaper helper excluded). */
  alive: ProcessInfo[];
  rssBytes: number;
  /** Wall time the sweep took, used to pace the next one. */
  costMs: number;
  /** Whether the whole process table was read (else only the helper's subtree and known processes). */
  full: boolean;
  /**
   * Whether a process not known to be ours read an empty environment for the first time in this sample: a
   * process inside execve shows none for a moment, so a token carrier can look like that once. A sample
   * that found nothing alive proves nothing then; one a moment later settles it (TreeSampler.remaining).
   */
  unsettled: boolean;
}

export interface SampleRequest {
  /**
   * Look beyond the helper's subtree too, for token carriers: at every process started since the last
   * whole-table sweep (the pid counter tells which), or at the whole table when that cannot be told.
   */
  full?: boolean;
}

export interface TrackerOptions {
  token: string;
  /** Session (and process group) the run was started in: the spawned process's pid. */
  sessionId: number;
  /** The first process of the run; nothing owned can be older than it. */
  root: ProcessIdentity;
  /** seq-test's own helper: part of the tree, never reported or counted. */
  helper?: ProcessIdentity | undefined;
  table?: ProcessTable;
  /**
   * With the helper, most samples walk its subtree only; a full sweep (which also finds token carriers
   * outside the tree) still runs at least this often (default 5000 ms) and whenever asked for.
   */
  fullSweepEveryMs?: number;
}

const key = identityKey;

/** Bounds the re-reads of the helper's child list when orphans keep arriving during one walk. */
const MAX_WALK_ROUNDS = 8;

/**
 * How many reads without our token make a process tokenless for good. One is not proof: a process caught
 * between fork and exec shows its parent's environment, and one inside execve an empty one (measured here:
 * of 304,309 reads in the first 20 ms of 300 fork+execs, 73,398 showed the parent's environment and 1,916
 * were empty). Two reads in different samples are.
 */
const TOKENLESS_AFTER_READS = 2;

/**
 * Follows which processes belong to a run while it runs, by the rules of ownership.ts. A process is owned
 * when, started no earlier than the run, it is in the run's session or process group (while that group is
 * witnessed to be the run's: groupWitnessed), descends from an owned process, or carries the run's token
 * in its environment; once owned it stays owned for its lifetime (pid + start time), so a child
 * that later calls setsid or is re-parented is still recognised.
 *
 * Two ways to find them:
 * - **subtree walk** (Linux with the subreaper helper): every process of the run descends from the
 *   helper, orphans included (they are re-parented to it), so reading the children lists from the helper
 *   down finds them all; the cost grows with the run, not with the machine.
 * - **full sweep**: every process in the table, checked against the rules above (an environment is read
 *   until two reads in different samples lack the token, and that answer is cached). Used without the
 *   helper, when the helper is gone, and every few seconds. When the caller asks for one on top of a walk
 *   (at the end of a run: token carriers outside the tree), only processes started since the last whole
 *   sweep are read: pids are handed out in increasing order, so the pid counter at that sweep marks them,
 *   until the counter wraps around.
 */
export class RunTracker {
  private readonly owned = new Map<string, OwnedProcess>();
  /** Processes read without our token, and how often (see TOKENLESS_AFTER_READS). */
  private readonly tokenless = new Map<string, number>();
  private readonly table: ProcessTable;
  private readonly self: number = process.pid;
  private readonly fullSweepEveryMs: number;
  private lastFullAt = 0;
  /** Pid counter at the last whole sweep (or at the start): pids handed out after it are newer processes. */
  private mark: number | undefined;
  private markDistance = 0;
  private subtreeEmpty = false;
  /** Set by a sweep that read an empty environment it may read again (TreeSample.unsettled). */
  private unsettled = false;

  constructor(private readonly options: TrackerOptions) {
    this.table = options.table ?? processTable();
    this.fullSweepEveryMs = options.fullSweepEveryMs ?? 5000;
    // Nothing outside the tree can carry a token that was just created: the first full sweep can wait,
    // and until then every process of the run is newer than the pid counter's reading now.
    this.begin();
    this.owned.set(key(options.root), { ...options.root, comm: '' });
    if (options.helper) this.owned.set(key(options.helper), { ...options.helper, comm: '' });
  }

  /**
   * The run starts now (the tracker may be made ahead of it, while the run waits for its turn): the pid
   * mark and the full-sweep clock start here, so processes started while it waited are not its own.
   */
  begin(): void {
    this.lastFullAt = performance.now();
    this.setMark(this.table.pidCounter?.());
  }

  sample(request: SampleRequest = {}): TreeSample {
    const begun = performance.now();
    this.unsettled = false;
    // Read before any listing below: the reading is also the next mark when this sample sweeps the table.
    const counter = this.table.pidCounter?.();
    const newer = this.newerThanMark(counter);
    const due = begun - this.lastFullAt >= this.fullSweepEveryMs;
    let found = due ? undefined : this.walk();
    let full = found === undefined;
    if (found && request.full && newer) {
      // Everything older than the mark was classified by the last whole sweep (or predates the run): only
      // processes started since can be token carriers we do not know yet.
      const byPid = new Map(found.map((info) => [info.pid, info]));
      for (const info of this.sweep(newer)) byPid.set(info.pid, info);
      found = [...byPid.values()];
      full = true;
    } else if (!found || request.full) {
      found = this.sweep();
      this.lastFullAt = begun;
      this.setMark(counter);
      full = true;
    }
    const alive: ProcessInfo[] = [];
    let rssBytes = 0;
    const helper = this.options.helper;
    for (const info of found) {
      if (isGone(info)) continue;
      if (helper && info.pid === helper.pid && info.start === helper.start) continue;
      alive.push(info);
      rssBytes += info.rssBytes;
    }
    return { alive, rssBytes, costMs: performance.now() - begun, full, unsettled: this.unsettled };
  }

  /** Owned processes that are alive right now (helper excluded), each re-checked by pid and start time. */
  aliveNow(request: SampleRequest = {}): OwnedProcess[] {
    return this.sample(request).alive.map((info) => ({ pid: info.pid, start: info.start, comm: info.comm }));
  }

  /**
   * The helper reported that it has nothing left to reap: its subtree is empty for good, and walks go on
   * without it (it may be gone by now) over the other owned processes.
   */
  markSubtreeEmpty(): void {
    this.subtreeEmpty = true;
  }

  commandLine(pid: number): string {
    return this.table.commandLine(pid);
  }

  /**
   * The helper's subtree plus every other owned process still alive, or undefined when a walk is not
   * possible (no helper, helper gone, children not listable). A child is taken only if its stat names the
   * parent it was listed under: a pid that died and was reused between the two reads is a stranger.
   */
  private walk(): ProcessInfo[] | undefined {
    const helper = this.options.helper;
    if (!helper || !this.table.children) return undefined;
    if (!this.subtreeEmpty) {
      const helperInfo = this.table.get(helper.pid);
      if (isGone(helperInfo) || helperInfo?.start !== helper.start) return undefined;
    }
    const found = new Map<number, ProcessInfo>();
    const pending: number[] = [];
    const take = (info: ProcessInfo | undefined) => {
      if (!info || found.has(info.pid) || info.pid === this.self || info.start < this.options.root.start) return;
      found.set(info.pid, info);
      pending.push(info.pid);
      const k = key(info);
      if (!this.owned.has(k)) this.owned.set(k, { pid: info.pid, start: info.start, comm: info.comm });
    };
    /** Whether a child we had not seen was taken; undefined when the children could not be listed. */
    const takeChildrenOf = (parent: number): boolean | undefined => {
      const children = this.table.children?.(parent);
      if (!children) return undefined;
      let fresh = false;
      for (const pid of children) {
        if (found.has(pid)) continue;
        const info = this.table.get(pid);
        if (info?.ppid !== parent) continue;
        take(info);
        fresh = true;
      }
      return fresh;
    };
    const takeDescendants = () => {
      while (pending.length > 0) takeChildrenOf(pending.pop() as number);
    };
    // Owned processes found earlier (token carriers outside the subtree among them), if they still run.
    for (const [k, p] of this.owned) {
      if (p.pid === helper.pid) continue;
      const info = this.table.get(p.pid);
      if (info?.start === p.start) take(info);
      else this.owned.delete(k);
    }
    takeDescendants();
    // A process that exits while we walk hands its children to the helper (the nearest subreaper), maybe
    // after we read the helper's list: read that list again until it holds nobody new.
    for (let round = 0; round < MAX_WALK_ROUNDS && !this.subtreeEmpty; round++) {
      const fresh = takeChildrenOf(helper.pid);
      if (fresh === undefined) return undefined; // the helper is gone: only a full sweep can tell
      if (round > 0 && !fresh) break;
      takeDescendants();
    }
    return [...found.values()];
  }

  /**
   * A pid filter for the processes started since the mark, or undefined when it cannot be trusted. Also
   * notices the counter going round past the mark (the distance shrinks), which spoils the filter until
   * the next whole sweep sets a new mark. The counter is read at every sample (one small read), so a
   * wrap-around goes unnoticed only if the whole pid range is used up between two samples.
   */
  private newerThanMark(counter: PidCounter | undefined): ((pid: number) => boolean) | undefined {
    if (!counter || this.mark === undefined) return undefined;
    const mark = this.mark;
    const distance = (counter.last - mark + counter.max) % counter.max;
    if (distance < this.markDistance) this.mark = undefined;
    this.markDistance = distance;
    if (this.mark === undefined) return undefined;
    return (pid) => {
      const d = (pid - mark + counter.max) % counter.max;
      return d > 0 && d <= distance;
    };
  }

  private setMark(counter: PidCounter | undefined): void {
    this.mark = counter?.last;
    this.markDistance = 0;
  }

  /** Every process in the table (or those `only` accepts), checked against the ownership rules. */
  private sweep(only?: (pid: number) => boolean): ProcessInfo[] {
    const all = this.table.list(only);
    const byPid = new Map<number, ProcessInfo>();
    for (const info of all) byPid.set(info.pid, info);
    const verdict = new Map<number, boolean>();
    const group = this.options.sessionId;
    // Checked against what was known before this sweep (a partial sweep lists only newer processes), and
    // only when a process not otherwise owned is in the group: it can cost a read per known process.
    const known = [...this.owned.values()];
    let groupIsOurs: boolean | undefined;
    const inOurGroup = (info: ProcessInfo): boolean => {
      if (info.sid !== group && info.pgid !== group) return false;
      groupIsOurs ??= groupWitnessed(group, known, (pid) =>
        only ? (byPid.get(pid) ?? this.table.get(pid)) : byPid.get(pid),
      );
      return groupIsOurs;
    };
    const isOwned = (info: ProcessInfo, depth: number): boolean => {
      const known = verdict.get(info.pid);
      if (known !== undefined) return known;
      const k = key(info);
      let result = false;
      if (info.pid === this.self || info.start < this.options.root.start) result = false;
      else if (this.owned.has(k)) result = true;
      else if (inOurGroup(info)) result = true;
      else {
        const parent = byPid.get(info.ppid);
        if (parent && depth < 4096 && isOwned(parent, depth + 1)) result = true;
        else if ((this.tokenless.get(k) ?? 0) < TOKENLESS_AFTER_READS) {
          const read = this.table.readEnv?.(info.pid, TOKEN_ENV) ?? {
            value: this.table.envValue(info.pid, TOKEN_ENV),
            empty: false,
          };
          result = chainHas(read.value, this.options.token);
          if (!result) {
            const reads = (this.tokenless.get(k) ?? 0) + 1;
            this.tokenless.set(k, reads);
            if (read.empty && reads < TOKENLESS_AFTER_READS) this.unsettled = true;
          }
        }
      }
      if (result && !this.owned.has(k)) this.owned.set(k, { pid: info.pid, start: info.start, comm: info.comm });
      verdict.set(info.pid, result);
      return result;
    };
    const found = all.filter((info) => !isGone(info) && isOwned(info, 0));
    if (!only) this.forgetDead(byPid);
    return found;
  }

  private forgetDead(byPid: Map<number, ProcessInfo>): void {
    for (const [k, p] of this.owned) {
      const info = byPid.get(p.pid);
      if (!info || info.start !== p.start) this.owned.delete(k);
    }
    for (const k of this.tokenless.keys()) {
      const pid = Number(k.slice(0, k.indexOf(':')));
      if (!byPid.has(pid)) this.tokenless.delete(k);
    }
  }
}
