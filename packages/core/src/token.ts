import { randomBytes } from 'node:crypto';
import type { ProcessIdentity } from './identity.js';
import { type ProcessTable, processTable } from './proc/index.js';

/**
 * The environment variable every process of a run inherits. Its value is the chain of run tokens from the
 * outermost run to the innermost, joined by ":". A token names its owner (the process that runs and
 * reaps the run) as "<pid>.<start>.<random>", so anyone can tell whether the run is still alive.
 *
 * Trust model: every participant runs as the same user, and tokens are not secrets (any process of that
 * user can read another's environment, and `status --json` prints them). A token is a label that finds a
 * run's processes, not a credential: what a process may claim from the chain it inherits is checked
 * against the process tree (trustedChain).
 */
export const TOKEN_ENV = 'SEQ_TEST_TOKEN';

export interface RunToken {
  value: string;
  owner: ProcessIdentity;
}

export function createToken(owner: ProcessIdentity): RunToken {
  return { value: `${owner.pid}.${owner.start}.${randomBytes(6).toString('hex')}`, owner };
}

export function parseToken(value: string): RunToken | undefined {
  const match = /^(\d+)\.(\d+)\.([0-9a-f]{6,64})$/.exec(value);
  if (!match) return undefined;
  return { value, owner: { pid: Number(match[1]), start: Number(match[2]) } };
}

/** Tokens of a chain, outermost first; malformed entries are dropped. */
export function parseChain(chain: string | undefined): RunToken[] {
  if (!chain) return [];
  return chain
    .split(':')
    .map(parseToken)
    .filter((token): token is RunToken => token !== undefined);
}

export function extendChain(chain: string | undefined, token: RunToken): string {
  return [...parseChain(chain).map((t) => t.value), token.value].join(':');
}

export function chainHas(chain: string | undefined, token: string): boolean {
  return chain?.split(':').includes(token) ?? false;
}

/**
 * The part of an inherited chain this process may claim: the tokens whose owner is alive and is this
 * process or one of its ancestors, outermost first; undefined when none is left. A token left in a shell by
 * a dead run, or copied from `status --json` by a process outside the holder's tree, is dropped: it must
 * neither let a run skip the queue as if nested in the holder, nor mark a live run's processes as a dead
 * run's leftovers. A process that left its run's tree altogether (re-parented to init) loses the chain too.
 */
export function trustedChain(chain: string | undefined, table: ProcessTable = processTable()): string | undefined {
  const tokens = parseChain(chain);
  if (tokens.length === 0) return undefined;
  const ancestry = new Map<number, number>(); // pid -> start, from this process up to init
  let pid = process.pid;
  for (let depth = 0; depth < 4096 && pid > 0 && !ancestry.has(pid); depth++) {
    const info = table.get(pid);
    if (!info) break;
    ancestry.set(pid, info.start);
    pid = info.ppid;
  }
  const kept = tokens.filter((t) => ancestry.get(t.owner.pid) === t.owner.start).map((t) => t.value);
  return kept.length > 0 ? kept.join(':') : undefined;
}
