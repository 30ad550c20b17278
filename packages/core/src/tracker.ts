import type { ProcessIdentity } from './identity.js';
import { isGone, type ProcessInfo, type ProcessTable, processTable } from './proc/index.js';
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
}

export interface SampleRequest {
  /** Read the whole process table, token checks included, even when the helper's subtree would do. */
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

const key = (p: ProcessIdentity) => `${p.pid}:${p.start}`;

/** Bounds the re-reads of the helper's child list when orphans keep arriving during one walk. */
const MAX_WALK_ROUNDS = 8;

/**
 * Decides which processes belong to a run. A process is owned when, started no earlier than the run,
 * it is in the run's session or process group, descends from an owned process, or carries the run's
 * token in its environment; once owned it stays owned for its lifetime (pid + start time), so a child
 * that later calls setsid or is re-parented is still recognised.
 *
 * Two ways to find them:
 * - **subtree walk** (Linux with the subreaper helper): every process of the run descends from the
 *   helper, orphans included (they are re-parented to it), so reading the children lists from the helper
 *   down finds them all; the cost grows with the run, not with the machine.
 * - **full sweep**: every process in the table, checked against the rules above (an environment is read
 *   once per process and the answer cached). Used without the helper, when the helper is gone, every
 *   few seconds, and when the caller asks (at the end of a run: token carriers outside the tree).
 */
export class RunTracker {
  private readonly owned = new Map<string, OwnedProcess>();
  private readonly tokenless = new Set<string>();
  private readonly table: ProcessTable;
  private readonly self: number = process.pid;
  private readonly fullSweepEveryMs: number;
  private lastFullAt: number;

  constructor(private readonly options: TrackerOptions) {
    this.table = options.table ?? processTable();
    this.fullSweepEveryMs = options.fullSweepEveryMs ?? 5000;
    // Nothing outside the tree can carry a token that was just created: the first full sweep can wait.
    this.lastFullAt = performance.now();
    this.owned.set(key(options.root), { ...options.root, comm: '' });
    if (options.helper) this.owned.set(key(options.helper), { ...options.helper, comm: '' });
  }

  sample(request: SampleRequest = {}): TreeSample {
    const begun = performance.now();
    const due = begun - this.lastFullAt >= this.fullSweepEveryMs;
    let found = request.full || due ? undefined : this.walk();
    const full = found === undefined;
    if (!found) {
      found = this.sweep();
      this.lastFullAt = begun;
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
    return { alive, rssBytes, costMs: performance.now() - begun, full };
  }

  /** Owned processes that are alive right now (helper excluded), each re-checked by pid and start time. */
  aliveNow(request: SampleRequest = {}): OwnedProcess[] {
    return this.sample(request).alive.map((info) => ({ pid: info.pid, start: info.start, comm: info.comm }));
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
    const helperInfo = this.table.get(helper.pid);
    if (isGone(helperInfo) || helperInfo?.start !== helper.start) return undefined;
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
    // Owned processes found earlier outside the subtree (token carriers), if they still run.
    for (const [k, p] of this.owned) {
      if (p.pid === helper.pid) continue;
      const info = this.table.get(p.pid);
      if (info?.start === p.start) take(info);
      else this.owned.delete(k);
    }
    // A process that exits while we walk hands its children to the helper (the nearest subreaper), maybe
    // after we read the helper's list: read that list again until it holds nobody new.
    for (let round = 0; round < MAX_WALK_ROUNDS; round++) {
      const fresh = takeChildrenOf(helper.pid);
      if (fresh === undefined) return undefined; // the helper is gone: only a full sweep can tell
      if (round > 0 && !fresh) break;
      while (pending.length > 0) takeChildrenOf(pending.pop() as number);
    }
    return [...found.values()];
  }

  /** Every process in the table, checked against the ownership rules. */
  private sweep(): ProcessInfo[] {
    const all = this.table.list();
    const byPid = new Map<number, ProcessInfo>();
    for (const info of all) byPid.set(info.pid, info);
    const verdict = new Map<number, boolean>();
    const isOwned = (info: ProcessInfo, depth: number): boolean => {
      const known = verdict.get(info.pid);
      if (known !== undefined) return known;
      const k = key(info);
      let result = false;
      if (info.pid === this.self || info.start < this.options.root.start) result = false;
      else if (this.owned.has(k)) result = true;
      else if (info.sid === this.options.sessionId || info.pgid === this.options.sessionId) result = true;
      else {
        const parent = byPid.get(info.ppid);
        if (parent && depth < 4096 && isOwned(parent, depth + 1)) result = true;
        else if (!this.tokenless.has(k)) {
          result = chainHas(this.table.envValue(info.pid, TOKEN_ENV), this.options.token);
          if (!result) this.tokenless.add(k);
        }
      }
      if (result && !this.owned.has(k)) this.owned.set(k, { pid: info.pid, start: info.start, comm: info.comm });
      verdict.set(info.pid, result);
      return result;
    };
    const found = all.filter((info) => !isGone(info) && isOwned(info, 0));
    this.forgetDead(byPid);
    return found;
  }

  private forgetDead(byPid: Map<number, ProcessInfo>): void {
    for (const [k, p] of this.owned) {
      const info = byPid.get(p.pid);
      if (!info || info.start !== p.start) this.owned.delete(k);
    }
    for (const k of this.tokenless) {
      const pid = Number(k.slice(0, k.indexOf(':')));
      if (!byPid.has(pid)) this.tokenless.delete(k);
    }
  }
}
