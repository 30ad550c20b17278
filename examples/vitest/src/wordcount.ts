/** Counts lines, words and characters like `wc`, for text given as a string. */
export function wordcount(text: string): { lines: number; words: number; chars: number } {
  const lines = text === '' ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  const words = text.split(/\s+/).filter(Boolean).length;
  return { lines, words, chars: [...text].length };
}
