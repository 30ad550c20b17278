import { applyEdits, type JSONPath, modify, type ParseError, parse } from 'jsonc-parser';

/**
 * Minimal edits to JSON files (package.json, .seqtestrc.json, jest.config.json): only the changed member is
 * rewritten; the rest of the file, its indentation, key order and line endings stay as they were.
 */
export function setJsonValue(text: string, path: JSONPath, value: unknown, options: { sorted?: boolean } = {}): string {
  const indent = detectIndent(text);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const edits = modify(text, path, value, {
    formattingOptions: { insertSpaces: indent !== '\t', tabSize: indent === '\t' ? 1 : indent.length, eol },
    ...(options.sorted
      ? { getInsertionIndex: (keys: string[]) => sortedPlace(keys, String(path[path.length - 1])) }
      : {}),
  });
  return applyEdits(text, edits);
}

/**
 * Where a new key goes: in alphabetical place when the object's keys are sorted already (as npm keeps
 * dependencies), else at the end.
 */
function sortedPlace(keys: string[], key: string): number {
  const sorted = keys.every((k, i) => i === 0 || (keys[i - 1] as string).localeCompare(k, 'en') <= 0);
  if (!sorted) return keys.length;
  const at = keys.findIndex((k) => key.localeCompare(k, 'en') < 0);
  return at === -1 ? keys.length : at;
}

/** Parses JSON; throws with the file name when it is not valid. */
export function parseJsonFile(text: string, file: string): unknown {
  const errors: ParseError[] = [];
  const value = parse(text, errors, { allowTrailingComma: false, disallowComments: true });
  if (errors.length > 0) throw new Error(`${file} is not valid JSON (at offset ${errors[0]?.offset})`);
  return value;
}

function detectIndent(text: string): string {
  const match = /^([ \t]+)\S/m.exec(text);
  if (!match?.[1]) return '  ';
  return match[1].startsWith('\t') ? '\t' : match[1];
}
