import { statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, type ProcessIdentity, signalIdentity } from './identity.js';
import { type ProcessInfo, processTable } from './proc/index.js';
import { parseChain, TOKEN_ENV } from './token.js';

export interface RunProcess extends ProcessIdentity {
  command: string;
  rssBytes: number;
  /** The run token that makes it ours. */
  token: string;
}

export interface ReapedLeftover extends RunProcess {
  /** The last signal sent, or null for a dry run. */
  signal: NodeJS.Signals | null;
}

/**
 * Processes that carry the token of a run whose owner is gone: the leftovers of a crashed or killed run.
 * A process whose environment we cannot read, or that belongs to another user, is never a candidate.
 * With `token`, only that run's leftovers.
 */
export function findLeftovers(options: { token?: string } = {}): RunProcess[] {
  const table = processTable();
  const ownerAlive = new Map<string, boolean>();
  const found: RunProcess[] = [];
  for (const info of table.list()) {
    if (info.pid === process.pid || info.state === 'Z') continue;
    const chain = parseChain(table.envValue(info.pid, TOKEN_ENV));
    const dead = chain.find((t) => {
      if (options.token && t.value !== options.token) return false;
      let alive = ownerAlive.get(t.value);
      if (alive === undefined) {
        alive = isAlive(t.owner);
        ownerAlive.set(t.value, alive);
      }
      return !alive;
    });
    if (dead && isOurs(info)) found.push(describe(info, dead.value));
  }
  return found;
}

/** The live processes of a run: its owner's descendants and every process carrying its token. */
export function runProcesses(token: string, owner: ProcessIdentity): RunProcess[] {
  const table = processTable();
  const all = table.list();
  const children = new Map<number, ProcessInfo[]>();
  for (const info of all) {
    const siblings = children.get(info.ppid) ?? [];
    siblings.push(info);
    children.set(info.ppid, siblings);
  }
  const result = new Map<number, RunProcess>();
  const stack = all.filter((p) => p.pid === owner.pid && p.start === owner.start);
  while (stack.length > 0) {
    const info = stack.pop() as ProcessInfo;
    if (result.has(info.pid) || info.state === 'Z') continue;
    result.set(info.pid, describe(info, token));
    stack.push(...(children.get(info.pid) ?? []));
  }
  for (const info of all) {
    if (result.has(info.pid) || info.state === 'Z' || info.start < owner.start) continue;
    if (parseChain(table.envValue(info.pid, TOKEN_ENV)).some((t) => t.value === token)) {
      result.set(info.pid, describe(info, token));
    }
  }
  return [...result.values()];
}

/** TERM, then SIGKILL after graceMs to what is left; every signal re-checks pid and start time. */
export async function endProcesses(targets: RunProcess[], graceMs = 1000): Promise<ReapedLeftover[]> {
  const reaped: ReapedLeftover[] = [];
  for (const target of targets) {
    if (signalIdentity(target, 'SIGTERM')) reaped.push({ ...target, signal: 'SIGTERM' });
  }
  const deadline = performance.now() + graceMs;
  while (reaped.some((p) => isAlive(p)) && performance.now() < deadline) await sleep(20);
  for (const p of reaped) {
    if (signalIdentity(p, 'SIGKILL')) p.signal = 'SIGKILL';
  }
  return reaped;
}

/** Finds and ends the leftovers of dead runs (all of them, or one run's). */
export async function reapLeftovers(options: { token?: string; graceMs?: number; dryRun?: boolean } = {}) {
  const found = findLeftovers(options);
  if (options.dryRun) return found.map((p): ReapedLeftover => ({ ...p, signal: null }));
  return endProcesses(found, options.graceMs);
}

function describe(info: ProcessInfo, token: string): RunProcess {
  return {
    pid: info.pid,
    start: info.start,
    command: processTable().commandLine(info.pid),
    rssBytes: info.rssBytes,
    token,
  };
}

function isOurs(info: ProcessInfo): boolean {
  if (process.platform !== 'linux') return true; // macOS: `ps -E` only shows our own users' environments
  try {
    return statSync(`/proc/${info.pid}`).uid === (process.getuid?.() ?? 0);
  } catch {
    return false;
  }
}
