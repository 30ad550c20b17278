import { isMap, isScalar, parseDocument, type Scalar, type YAMLMap } from 'yaml';

/** One text splice: `remove` characters at `at` replaced by `insert`. */
export interface TextEdit {
  at: number;
  remove: number;
  insert: string;
}

/** Applies splices from the last one up, so that earlier positions stay valid. */
export function applyEdits(text: string, edits: TextEdit[]): string {
  let next = text;
  for (const edit of [...edits].sort((a, b) => b.at - a.at)) {
    next = next.slice(0, edit.at) + edit.insert + next.slice(edit.at + edit.remove);
  }
  return next;
}

/**
 * The text as a YAML scalar in the style the value had (plain, 'single' or "double" quoted) when that style
 * can hold it, else the next one that can: each candidate is parsed back (in a block or a flow mapping, where
 * it goes) and must give the same text.
 */
export function yamlScalar(text: string, style: Scalar['type'] | undefined, flow = false): string {
  const plain = text;
  const single = `'${text.replace(/'/g, "''")}'`;
  const double = JSON.stringify(text);
  const order =
    style === 'QUOTE_DOUBLE' ? [double] : style === 'QUOTE_SINGLE' ? [single, double] : [plain, single, double];
  for (const candidate of order) {
    const doc = parseDocument(flow ? `{k: ${candidate}}\n` : `k: ${candidate}\n`);
    if (doc.errors.length === 0 && isMap(doc.contents) && (doc.contents.get('k') as unknown) === text) return candidate;
  }
  return double;
}

/** A splice that replaces a scalar's value, keeping its quoting when it can; undefined for block scalars. */
export function replaceScalar(node: unknown, value: string, flow = false): TextEdit | undefined {
  if (!isScalar(node) || !node.range) return undefined;
  const scalar = node as Scalar;
  if (scalar.type === 'BLOCK_LITERAL' || scalar.type === 'BLOCK_FOLDED') return undefined;
  const [start, end] = scalar.range as [number, number, number];
  return { at: start, remove: end - start, insert: yamlScalar(value, scalar.type, flow) };
}

/**
 * A splice that adds `key: value` lines to a mapping: after its last line, at its keys' column (block
 * mapping), or before the closing brace (flow mapping). Values are YAML text already.
 */
export function appendPairs(text: string, map: YAMLMap, pairs: [string, string][]): TextEdit | string {
  const range = map.range;
  if (!range) return 'no position for the mapping';
  if (map.flow) {
    let at = text.lastIndexOf('}', range[1]);
    if (at < range[0]) return 'cannot find the end of the mapping';
    while (at > range[0] && /[ \t]/.test(text[at - 1] ?? '')) at--;
    return { at, remove: 0, insert: pairs.map(([k, v]) => `, ${k}: ${v}`).join('') };
  }
  const firstKey = map.items[0]?.key;
  if (!isScalar(firstKey) || !firstKey.range) return 'cannot find the mapping keys';
  const keyStart = firstKey.range[0];
  const column = keyStart - (text.lastIndexOf('\n', keyStart - 1) + 1);
  // After the last line of the map's content (range[1] ends its last value, before a trailing comment).
  let at = text.indexOf('\n', Math.max(range[1] - 1, keyStart));
  let prefix = '';
  if (at === -1) {
    at = text.length;
    prefix = '\n';
  } else {
    at += 1;
  }
  return { at, remove: 0, insert: `${prefix}${pairs.map(([k, v]) => `${' '.repeat(column)}${k}: ${v}\n`).join('')}` };
}
