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
}

const key = (p: ProcessIdentity) => `${p.pid}:${p.start}`;

/**
 * Decides which processes belong to a run. A process is owned when, started no earlier than the run,
 * it is in the run's session or process group, descends from an owned process, or carries the run's
 * token in its environment; once owned it stays owned for its lifetime (pid + start time), so a child
 * that later calls setsid or is re-parented is still recognised. The environment of a process is read
 * once and the answer cached, which keeps repeated sweeps cheap.
 */
export class RunTracker {
  private readonly owned = new Map<string, OwnedProcess>();
  private readonly tokenless = new Set<string>();
  private readonly table: ProcessTable;
  private readonly self: number = process.pid;

  constructor(private readonly options: TrackerOptions) {
    this.table = options.table ?? processTable();
    this.owned.set(key(options.root), { ...options.root, comm: '' });
    if (options.helper) this.owned.set(key(options.helper), { ...options.helper, comm: '' });
  }

  sample(): TreeSample {
    const begun = performance.now();
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
    const alive: ProcessInfo[] = [];
    let rssBytes = 0;
    const helper = this.options.helper;
    for (const info of all) {
      if (isGone(info) || !isOwned(info, 0)) continue;
      if (helper && info.pid === helper.pid && info.start === helper.start) continue;
      alive.push(info);
      rssBytes += info.rssBytes;
    }
    this.forgetDead(byPid);
    return { alive, rssBytes, costMs: performance.now() - begun };
  }

  /** Owned processes that are alive right now (helper excluded), each re-checked by pid and start time. */
  aliveNow(): OwnedProcess[] {
    return this.sample().alive.map((info) => ({ pid: info.pid, start: info.start, comm: info.comm }));
  }

  commandLine(pid: number): string {
    return this.table.commandLine(pid);
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
