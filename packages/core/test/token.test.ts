import { describe, expect, it } from 'vitest';
import { identityOf } from '../src/identity.js';
import { chainHas, createToken, extendChain, isRunAlive, parseChain, parseToken, TOKEN_ENV } from '../src/token.js';

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

  it('a run is alive while its owner is (pid and start time)', () => {
    const self = identityOf(process.pid);
    expect(self).toBeDefined();
    expect(isRunAlive(createToken(self!))).toBe(true);
    expect(isRunAlive(createToken({ pid: process.pid, start: self!.start + 1 }))).toBe(false);
  });
});
