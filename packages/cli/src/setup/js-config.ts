import { parse as babelParse } from '@babel/parser';

/**
 * Reading and editing JavaScript/TypeScript config files. Edits are text splices at the positions Babel's
 * parser gives: only the inserted text is new, every other byte of the file (indentation, quotes, semicolons,
 * trailing commas, comments, blank lines) stays as it was. No printer is involved, so nothing is reformatted.
 */
export interface Module {
  code: string;
  program: Node;
}

/** Babel AST node, loosely typed: we only read `type` and a few fields. */
// biome-ignore lint/suspicious/noExplicitAny: Babel nodes are walked generically here.
export type Node = any;

/** One splice: remove `remove` characters at `at`, then insert `insert` there. */
export interface Edit {
  at: number;
  remove?: number;
  insert: string;
}

export function parse(code: string): Module | undefined {
  try {
    const file = babelParse(code, {
      sourceType: 'unambiguous',
      plugins: ['typescript'],
      allowReturnOutsideFunction: true,
    });
    return { code, program: file.program };
  } catch {
    return undefined;
  }
}

/**
 * Applies splices (positions in the original text), latest first so earlier positions stay valid; two inserts
 * at the same position land in the order they were listed.
 */
export function applyEdits(code: string, edits: Edit[]): string {
  let out = code;
  const sorted = edits
    .map((edit, index) => ({ edit, index }))
    .sort((a, b) => b.edit.at - a.edit.at || b.index - a.index);
  for (const { edit } of sorted) out = out.slice(0, edit.at) + edit.insert + out.slice(edit.at + (edit.remove ?? 0));
  return out;
}

export function body(mod: Module): Node[] {
  return mod.program.body as Node[];
}

/** `import … from 'source'` declarations and `require('source')` calls anywhere at top level. */
export function importsFrom(mod: Module, source: string): { locals: string[]; namespaces: string[]; found: boolean } {
  const locals: string[] = [];
  const namespaces: string[] = [];
  let found = false;
  for (const node of body(mod)) {
    if (node.type === 'ImportDeclaration' && node.source.value === source) {
      found = true;
      for (const spec of node.specifiers ?? []) {
        // `import * as x` and `import x from` (CommonJS interop: the default is module.exports) are namespaces.
        if (spec.type === 'ImportSpecifier') locals.push(spec.local.name);
        else namespaces.push(spec.local.name);
      }
    }
    if (node.type === 'VariableDeclaration') {
      for (const decl of node.declarations) {
        if (isRequireOf(decl.init, source)) {
          found = true;
          if (decl.id.type === 'Identifier') namespaces.push(decl.id.name);
          if (decl.id.type === 'ObjectPattern') {
            for (const prop of decl.id.properties) if (prop.value?.type === 'Identifier') locals.push(prop.value.name);
          }
        }
      }
    }
  }
  return { locals, namespaces, found };
}

export function isRequireOf(node: Node, source: string): boolean {
  return isRequire(node) && node.arguments[0].value === source;
}

/** `require('x')` with a string literal argument. */
export function isRequire(node: Node): boolean {
  return (
    node?.type === 'CallExpression' &&
    node.callee.type === 'Identifier' &&
    node.callee.name === 'require' &&
    node.arguments[0]?.type === 'StringLiteral'
  );
}

/**
 * Whether `callee` calls the export `name` of `source`: `name(…)` imported by name, `ns.name(…)` through a
 * namespace or default import or a required module, `require('source').name(…)`, or an awaited
 * `(await import('source')).name(…)`.
 */
export function callsExport(mod: Module, callee: Node, source: string, name: string): boolean {
  const { locals, namespaces } = importsFrom(mod, source);
  const target = unwrap(callee);
  if (target?.type === 'Identifier')
    return locals.includes(target.name) && localIsExport(mod, target.name, source, name);
  if (target?.type !== 'MemberExpression' || memberName(target) !== name) return false;
  const object = unwrap(target.object);
  if (object?.type === 'Identifier') return namespaces.includes(object.name);
  if (isRequireOf(object, source)) return true;
  const awaited = object?.type === 'AwaitExpression' ? unwrap(object.argument) : undefined;
  return awaited?.type === 'ImportExpression'
    ? awaited.source?.value === source
    : awaited?.type === 'CallExpression' && awaited.callee.type === 'Import' && awaited.arguments[0]?.value === source;
}

/** Whether the local binding `local` is the export `name` of `source` (`{ name }` or `{ name as local }`). */
function localIsExport(mod: Module, local: string, source: string, name: string): boolean {
  for (const node of body(mod)) {
    if (node.type === 'ImportDeclaration' && node.source.value === source) {
      for (const spec of node.specifiers ?? []) {
        if (spec.type === 'ImportSpecifier' && spec.local.name === local) return importedName(spec) === name;
      }
    }
    if (node.type === 'VariableDeclaration') {
      for (const decl of node.declarations) {
        if (!isRequireOf(decl.init, source) || decl.id.type !== 'ObjectPattern') continue;
        for (const prop of decl.id.properties) {
          if (prop.value?.type === 'Identifier' && prop.value.name === local) return keyName(prop.key) === name;
        }
      }
    }
  }
  return false;
}

function importedName(spec: Node): string {
  return spec.imported.type === 'Identifier' ? spec.imported.name : spec.imported.value;
}

function keyName(key: Node): string | undefined {
  return key?.type === 'Identifier' ? key.name : key?.type === 'StringLiteral' ? key.value : undefined;
}

function memberName(member: Node): string | undefined {
  if (!member.computed) return member.property.name;
  return member.property.type === 'StringLiteral' ? member.property.value : undefined;
}

/** Names bound at the top level (imports, variables, functions, classes). */
export function topLevelNames(mod: Module): Set<string> {
  const names = new Set<string>();
  for (const node of body(mod)) {
    if (node.type === 'ImportDeclaration') for (const spec of node.specifiers ?? []) names.add(spec.local.name);
    const declaration = node.type === 'ExportNamedDeclaration' ? node.declaration : node;
    if (declaration?.type === 'VariableDeclaration') {
      for (const decl of declaration.declarations) {
        if (decl.id.type === 'Identifier') names.add(decl.id.name);
        if (decl.id.type === 'ObjectPattern') {
          for (const prop of decl.id.properties) if (prop.value?.type === 'Identifier') names.add(prop.value.name);
        }
      }
    }
    if ((declaration?.type === 'FunctionDeclaration' || declaration?.type === 'ClassDeclaration') && declaration.id)
      names.add(declaration.id.name);
  }
  return names;
}

/** A static value of an object literal property (numbers, strings, booleans), else undefined. */
export function literal(node: Node): string | number | boolean | undefined {
  if (!node) return undefined;
  if (node.type === 'NumericLiteral' || node.type === 'StringLiteral' || node.type === 'BooleanLiteral')
    return node.value;
  if (node.type === 'TemplateLiteral' && node.expressions.length === 0) return node.quasis[0]?.value.cooked;
  if (node.type === 'TSAsExpression' || node.type === 'TSSatisfiesExpression') return literal(node.expression);
  return undefined;
}

/** The property `name` of an ObjectExpression node. */
export function property(object: Node, name: string): Node | undefined {
  if (object?.type !== 'ObjectExpression') return undefined;
  for (const prop of object.properties) {
    if (prop.type !== 'ObjectProperty' && prop.type !== 'Property') continue;
    if (keyName(prop.key) === name && !prop.computed) return prop.value;
  }
  return undefined;
}

/** Unwraps `x as T`, `x satisfies T`, `(x)`, `x!`. */
export function unwrap(node: Node): Node {
  let current = node;
  while (
    current &&
    (current.type === 'TSAsExpression' ||
      current.type === 'TSSatisfiesExpression' ||
      current.type === 'ParenthesizedExpression' ||
      current.type === 'TSNonNullExpression')
  ) {
    current = current.expression;
  }
  return current;
}

/** The initialiser of a top-level `const name = …`, unwrapped. */
export function variableInit(mod: Module, name: string): Node | undefined {
  for (const node of body(mod)) {
    const declaration = node.type === 'ExportNamedDeclaration' ? node.declaration : node;
    if (declaration?.type !== 'VariableDeclaration') continue;
    for (const decl of declaration.declarations) {
      if (decl.id.type === 'Identifier' && decl.id.name === name) return unwrap(decl.init);
    }
  }
  return undefined;
}

/** The module a top-level binding comes from: `import x from './base'`, `const x = require('./base')`. */
export function bindingSource(mod: Module, name: string): string | undefined {
  for (const node of body(mod)) {
    if (node.type === 'ImportDeclaration' && node.specifiers?.some((s: Node) => s.local.name === name)) {
      const spec = node.specifiers.find((s: Node) => s.local.name === name);
      // Only the default (or namespace) import is the whole config module.
      return spec.type === 'ImportSpecifier' && importedName(spec) !== 'default' ? undefined : node.source.value;
    }
  }
  const init = variableInit(mod, name);
  if (isRequire(init)) return init.arguments[0].value;
  if (init?.type === 'MemberExpression' && isRequire(init.object) && memberName(init) === 'default')
    return init.object.arguments[0].value;
  return undefined;
}

/** What a config module exports: the node, and how (`export default` or `module.exports =`). */
export function exportedNode(mod: Module): { node?: Node; esm: boolean; reexport?: string } {
  for (const statement of body(mod)) {
    if (statement.type === 'ExportDefaultDeclaration') return { node: statement.declaration, esm: true };
    // `export { default } from './base.mjs'`
    if (
      statement.type === 'ExportNamedDeclaration' &&
      statement.source &&
      statement.specifiers?.some((s: Node) => s.exported && keyName(s.exported) === 'default')
    ) {
      return { esm: true, reexport: statement.source.value };
    }
    const e = statement.type === 'ExpressionStatement' ? statement.expression : undefined;
    if (
      e?.type === 'AssignmentExpression' &&
      e.left.type === 'MemberExpression' &&
      e.left.object.name === 'module' &&
      memberName(e.left) === 'exports'
    ) {
      return { node: e.right, esm: false };
    }
  }
  return { esm: true };
}

// ---------------------------------------------------------------------------------------------------------
// The file's style

/** The indentation of the line holding `offset`. */
export function lineIndent(code: string, offset: number): string {
  const start = code.lastIndexOf('\n', offset - 1) + 1;
  return /^[ \t]*/.exec(code.slice(start))?.[0] ?? '';
}

/** One level of indentation as the file uses it: a tab, or the smallest step of spaces (2 when unknown). */
export function indentUnit(code: string): string {
  let smallest = 0;
  for (const match of code.matchAll(/^([ \t]+)\S/gm)) {
    const indent = match[1] ?? '';
    if (indent.startsWith('\t')) return '\t';
    if (smallest === 0 || indent.length < smallest) smallest = indent.length;
  }
  return ' '.repeat(smallest || 2);
}

function startsLine(code: string, offset: number): boolean {
  const start = code.lastIndexOf('\n', offset - 1) + 1;
  return code.slice(start, offset).trim() === '';
}

/** Whether a multi-line list in the file ends its last item with a comma (Prettier's default). */
function usesTrailingCommas(code: string): boolean {
  const trailing = (code.match(/,[ \t]*(\/\/[^\n]*)?\n[ \t]*[}\])]/g) ?? []).length;
  const bare = (code.match(/[^,{[(\s][ \t]*(\/\/[^\n]*)?\n[ \t]*[}\]]/g) ?? []).length;
  return trailing > 0 && trailing >= bare;
}

/**
 * Splices `text` in as the last item of an object or array literal (`items` are its properties or elements):
 * on the same line as the others when the literal is on one line, else on a line of its own, indented like the
 * items before it, with a trailing comma when the literal has one.
 */
export function appendItem(code: string, container: Node, items: Node[], text: string): Edit[] {
  const open = container.start as number;
  const close = (container.end as number) - 1;
  const present = items.filter(Boolean);
  const last = present[present.length - 1];
  const trailingComma: number | undefined = container.extra?.trailingComma;
  if (!last) {
    const inner = code.slice(open + 1, close);
    if (!inner.includes('\n')) {
      const pad = container.type === 'ObjectExpression' ? ' ' : '';
      return [{ at: open + 1, remove: inner.length, insert: `${pad}${text}${pad}` }];
    }
    const indent = lineIndent(code, open);
    const comma = usesTrailingCommas(code) ? ',' : '';
    return [{ at: close, insert: `${indent}${indentUnit(code)}${text}${comma}\n` }].map((e) =>
      startsLine(code, close) ? { ...e, at: code.lastIndexOf('\n', close - 1) + 1 } : { ...e, insert: `\n${e.insert}` },
    );
  }
  const first = present[0];
  const afterLast = trailingComma !== undefined ? trailingComma + 1 : (last.end as number);
  const multiline = code.slice(open, first.start).includes('\n') || code.slice(afterLast, close).includes('\n');
  const edits: Edit[] = [];
  if (!multiline) {
    edits.push({ at: afterLast, insert: trailingComma !== undefined ? ` ${text},` : `, ${text}` });
    return edits;
  }
  if (trailingComma === undefined) edits.push({ at: last.end, insert: ',' });
  const indent = startsLine(code, last.start) ? lineIndent(code, last.start) : lineIndent(code, first.start);
  const lineEnd = code.indexOf('\n', afterLast);
  const restOfLine = lineEnd === -1 ? '' : code.slice(afterLast, lineEnd);
  const line = `${indent}${text}${trailingComma !== undefined ? ',' : ''}`;
  if (lineEnd !== -1 && lineEnd < close && /^\s*(\/\/.*)?$/.test(restOfLine)) {
    edits.push({ at: lineEnd, insert: `\n${line}` });
  } else {
    edits.push({ at: afterLast, insert: `\n${line}` });
  }
  return edits;
}

/** Wraps an expression in a call: `name(<expression>)`, the expression's own text untouched. */
export function wrapInCall(node: Node, name: string): Edit[] {
  return [
    { at: node.start, insert: `${name}(` },
    { at: node.end, insert: ')' },
  ];
}

/**
 * Adds one import (or require) line at the top level, as text: after the last leading import/require, else
 * after 'use strict', else before the first statement (below pragmas such as `// @ts-check`, above a JSDoc
 * that belongs to the statement).
 */
export function insertTopLevelLine(code: string, line: string): Edit {
  const mod = parse(code);
  if (!mod) throw new Error('cannot parse');
  const program = mod.program;
  let offset = -1;
  for (const directive of program.directives ?? []) offset = Math.max(offset, directive.end);
  for (const node of program.body as Node[]) {
    const isImport =
      node.type === 'ImportDeclaration' ||
      (node.type === 'VariableDeclaration' && node.declarations.every((d: Node) => isRequire(d.init)));
    if (!isImport) break;
    offset = node.end;
  }
  if (offset >= 0) return { at: offset, insert: `\n${line}` };
  const first = (program.body as Node[])[0];
  if (!first) {
    const rest = code.slice(program.interpreter ? code.indexOf('\n') + 1 : 0);
    return { at: code.length, insert: `${rest === '' || rest.endsWith('\n') ? '' : '\n'}${line}\n` };
  }
  let at: number = first.start;
  for (const comment of first.leadingComments ?? []) {
    if (comment.type === 'CommentBlock' && comment.value.startsWith('*')) {
      at = comment.start;
      break;
    }
  }
  // The first import of a file without any: a blank line keeps it apart from the code, as imports usually are.
  return { at: code.lastIndexOf('\n', at - 1) + 1, insert: `${line}\n\n` };
}

/** `import { a } from 'x'` or `const { a } = require('x')` in the file's quote and semicolon style. */
export function importLine(code: string, kind: 'import' | 'require', name: string, source: string): string {
  const q = prefersDoubleQuotes(code) ? '"' : "'";
  // Statements ending in `;` anywhere in the file mean the file uses semicolons.
  const semi = /;[ \t]*(\/\/[^\n]*)?$/m.test(code) ? ';' : '';
  return kind === 'import'
    ? `import { ${name} } from ${q}${source}${q}${semi}`
    : `const { ${name} } = require(${q}${source}${q})${semi}`;
}

function prefersDoubleQuotes(code: string): boolean {
  const mod = parse(code);
  let single = 0;
  let double = 0;
  const visit = (node: Node) => {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const child of node) visit(child);
      return;
    }
    if (node.type === 'StringLiteral') {
      if (node.extra?.raw?.startsWith('"')) double++;
      else single++;
      return;
    }
    for (const key of Object.keys(node)) {
      if (key === 'loc' || key === 'leadingComments' || key === 'trailingComments' || key === 'extra') continue;
      visit(node[key]);
    }
  };
  if (mod) visit(mod.program);
  return double > single;
}
