import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { identityOf } from '../src/identity.js';
import { chainHas, createToken, extendChain, parseChain, parseToken, TOKEN_ENV, trustedChain } from '../src/token.js';

const owner = { pid: 4100, start: 93215 };

describe('run tokens', () => {
  it('name their owner and carry randomness', () => {
    const a = createToken(owner);
    const b = createToken(owner);
    expect(a.value).toMatch(/^4100\.93215\.[0-9a-f]{12}$/);
    expect(a.owner).toEqual(owner);
    expect(a.value).not.toBe(b.value);
    expect(TOKEN_ENV).toBe('SEQ_TEST_TOKEN');
  });

  it('parse back to their owner', () => {
    const token = createToken(owner);
    expect(parseToken(token.value)).toEqual(token);
  });

  it.each(['', 'garbage', '4100.93215', '4100.93215.XYZ', '4100.93215.abc', 'a.b.cdef01', '4100.93215.abcdef:1'])(
    'reject %j',
    (value) => {
      expect(parseToken(value)).toBeUndefined();
    },
  );
});

describe('token chains', () => {
  const outer = createToken({ pid: 1, start: 2 });
  const inner = createToken({ pid: 3, start: 4 });

  it('extend outermost first', () => {
    expect(extendChain(undefined, outer)).toBe(outer.value);
    expect(extendChain('', outer)).toBe(outer.value);
    expect(extendChain(outer.value, inner)).toBe(`${outer.value}:${inner.value}`);
  });

  it('drop malformed entries when extended or parsed', () => {
    expect(extendChain(`junk:${outer.value}:`, inner)).toBe(`${outer.value}:${inner.value}`);
    expect(parseChain(`junk:${outer.value}::x`).map((t) => t.value)).toEqual([outer.value]);
    expect(parseChain(undefined)).toEqual([]);
  });

  it('match whole entries only', () => {
    const chain = `${outer.value}:${inner.value}`;
    expect(chainHas(chain, outer.value)).toBe(true);
    expect(chainHas(chain, inner.value)).toBe(true);
    expect(chainHas(chain, inner.value.slice(0, -1))).toBe(false);
    expect(chainHas(undefined, inner.value)).toBe(false);
    expect(chainHas('', inner.value)).toBe(false);
  });

  // Issue 13, item 3: what a process may claim from the chain it inherits.
  it('trustedChain keeps the tokens of live ancestors (and our own), drops stale and borrowed ones', () => {
    const self = identityOf(process.pid);
    const parent = identityOf(process.ppid);
    expect(self && parent).toBeTruthy();
    const mine = createToken(self!);
    const ancestor = createToken(parent!);
    const dead = createToken({ pid: process.pid, start: self!.start + 1 }); // our pid, another process
    const stranger = createToken(identityOf(1)!); // alive, but init is an ancestor of everyone…
    expect(trustedChain([ancestor.value, mine.value].join(':'))).toBe([ancestor.value, mine.value].join(':'));
    expect(trustedChain([dead.value, mine.value].join(':'))).toBe(mine.value);
    expect(trustedChain(dead.value)).toBeUndefined();
    expect(trustedChain(undefined)).toBeUndefined();
    expect(trustedChain(stranger.value)).toBe(stranger.value); // …so init's would count: it never owns a run
  });

  it('trustedChain drops the token of a live process that is not an ancestor', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => child.once('spawn', resolve));
      const sibling = identityOf(child.pid as number);
      expect(sibling).toBeDefined();
      expect(trustedChain(createToken(sibling!).value)).toBeUndefined();
    } finally {
      child.kill('SIGKILL');
    }
  });
});
