import { readdirSync, readFileSync } from 'node:fs';
import { isAlive, processTable, type ReapedLeftover, type RunProcess, signalIdentity } from '@seq-test/core';

/**
 * core's endProcesses, for a process 'exit' handler where nothing asynchronous runs any more (Jest 29
 * calls process.exit on --bail without its global teardown): TERM, wait up to graceMs by sleeping on an
 * Atomics cell, then KILL what is left. Every signal re-checks pid and start time.
 */
export function endProcessesSync(targets: RunProcess[], graceMs: number): ReapedLeftover[] {
  const reaped: ReapedLeftover[] = [];
  for (const target of targets) {
    if (signalIdentity(target, 'SIGTERM')) reaped.push({ ...target, signal: 'SIGTERM' });
  }
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + graceMs;
  while (reaped.some((p) => isAlive(p)) && performance.now() < deadline) Atomics.wait(cell, 0, 0, 20);
  for (const p of reaped) {
    if (signalIdentity(p, 'SIGKILL')) p.signal = 'SIGKILL';
  }
  return reaped;
}

/**
 * "pid:start" of every live descendant of `pid`. On Linux from /proc/<pid>/task/<tid>/children (a few small
 * reads); elsewhere, or without that file, from one sweep of the process table.
 */
export function descendantsOf(pid: number): Set<string> {
  const found = new Set<string>();
  const table = processTable();
  const add = (child: number) => {
    const info = table.get(child);
    if (info && info.state !== 'Z') found.add(`${child}:${info.start}`);
  };
  if (process.platform === 'linux') {
    try {
      const stack = [pid];
      while (stack.length > 0) {
        const parent = stack.pop() as number;
        let tasks: string[] = [];
        try {
          tasks = readdirSync(`/proc/${parent}/task`);
        } catch {
          continue;
        }
        for (const tid of tasks) {
          const text = readFileSync(`/proc/${parent}/task/${tid}/children`, 'latin1').trim();
          for (const child of text ? text.split(/\s+/).map(Number) : []) {
            add(child);
            stack.push(child);
          }
        }
      }
      return found;
    } catch {
      found.clear(); // no children files (kernel without CONFIG_PROC_CHILDREN): fall through to a sweep
    }
  }
  const all = table.list();
  const byParent = new Map<number, number[]>();
  for (const info of all) byParent.set(info.ppid, [...(byParent.get(info.ppid) ?? []), info.pid]);
  const stack = [pid];
  while (stack.length > 0) {
    for (const child of byParent.get(stack.pop() as number) ?? []) {
      add(child);
      stack.push(child);
    }
  }
  return found;
}
