import { describe, expect, test } from 'vitest';
import { wordcount } from '../src/wordcount.js';

describe('wordcount', () => {
  test('counts lines, words and characters', () => {
    expect(wordcount('one two\nthree\n')).toEqual({ lines: 2, words: 3, chars: 14 });
  });
  test('empty text', () => {
    expect(wordcount('')).toEqual({ lines: 0, words: 0, chars: 0 });
  });
  test('a last line without a newline still counts', () => {
    expect(wordcount('a b').lines).toBe(1);
  });
});
