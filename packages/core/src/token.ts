import { randomBytes } from 'node:crypto';
import { isAlive, type ProcessIdentity } from './identity.js';

/**
 * The environment variable every process of a run inherits. Its value is the chain of run tokens from the
 * outermost run to the innermost, joined by ":". A token names its owner (the process that runs and
 * reaps the run) as "<pid>.<start>.<random>", so anyone can tell whether the run is still alive.
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

/** A run is alive while its owner process is. */
export function isRunAlive(token: RunToken): boolean {
  return isAlive(token.owner);
}
