import { applyEdits, type JSONPath, modify, type ParseError, parse } from 'jsonc-parser';

/**
 * Minimal edits to JSON files (package.json, .seqtestrc.json, jest.config.json): only the changed member is
 * rewritten; the rest of the file, its indentation, key order and line endings stay as they were.
 */
export function setJsonValue(text: string, path: JSONPath, value: unknown): string {
  const indent = detectIndent(text);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const edits = modify(text, path, value, {
    formattingOptions: { insertSpaces: indent !== '\t', tabSize: indent === '\t' ? 1 : indent.length, eol },
  });
  return applyEdits(text, edits);
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
