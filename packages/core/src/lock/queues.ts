import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RunToken } from '../token.js';
import { Queue, type QueueState } from './queue.js';

/**
 * Every queue of a state dir, nested ones included (below live tickets only, as a run's nested queue dies
 * with it), never through a symlink.
 */
export function visitQueues(stateDir: string, visit: (queue: Queue, state: QueueState) => void): void {
  let names: string[] = [];
  try {
    names = readdirSync(stateDir).filter((n) => n.startsWith('q-'));
  } catch {}
  const walk = (queue: Queue) => {
    if (!queue.exists()) return;
    const state = queue.read();
    visit(queue, state);
    for (const t of state.tickets) if (t.alive) walk(queue.nested(t.token));
  };
  for (const name of names) walk(new Queue(join(stateDir, name)));
}

/** The runs of every live ticket (a run still waiting has started nothing that carries its token). */
export function liveRuns(stateDir: string): RunToken[] {
  const live: RunToken[] = [];
  visitQueues(stateDir, (_queue, state) => {
    for (const t of state.tickets) if (t.alive) live.push({ value: t.token, owner: t.owner });
  });
  return live;
}
