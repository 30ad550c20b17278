import { detectCodeFormat, generateCode, type ProxifiedModule, parseModule } from 'magicast';

/**
 * Parsing and printing JavaScript/TypeScript config files (magicast: Babel's parser + recast, which reprints
 * only the nodes that changed, so comments and formatting elsewhere in the file survive).
 */
export type Module = ProxifiedModule<Record<string, unknown>>;

export function parse(code: string): Module | undefined {
  try {
    return parseModule(code) as Module;
  } catch {
    return undefined;
  }
}

export function print(mod: Module, original: string): string {
  let code = generateCode(mod, { format: detectCodeFormat(original) }).code;
  if (original.endsWith('\n') && !code.endsWith('\n')) code += '\n';
  return code;
}

/** Babel AST node, loosely typed: we only read `type` and a few fields. */
// biome-ignore lint/suspicious/noExplicitAny: Babel nodes are walked generically here.
export type Node = any;

export function body(mod: Module): Node[] {
  return (mod.$ast as Node).body as Node[];
}

/** `import … from 'source'` declarations and `require('source')` calls anywhere at top level. */
export function importsFrom(mod: Module, source: string): { locals: string[]; found: boolean } {
  const locals: string[] = [];
  let found = false;
  for (const node of body(mod)) {
    if (node.type === 'ImportDeclaration' && node.source.value === source) {
      found = true;
      for (const spec of node.specifiers ?? []) locals.push(spec.local.name);
    }
    if (node.type === 'VariableDeclaration') {
      for (const decl of node.declarations) {
        if (isRequireOf(decl.init, source)) {
          found = true;
          if (decl.id.type === 'Identifier') locals.push(decl.id.name);
          if (decl.id.type === 'ObjectPattern') {
            for (const prop of decl.id.properties) if (prop.value?.type === 'Identifier') locals.push(prop.value.name);
          }
        }
      }
    }
  }
  return { locals, found };
}

export function isRequireOf(node: Node, source: string): boolean {
  return (
    node?.type === 'CallExpression' &&
    node.callee.type === 'Identifier' &&
    node.callee.name === 'require' &&
    node.arguments[0]?.type === 'StringLiteral' &&
    node.arguments[0].value === source
  );
}

/** Names bound at the top level (imports, variables, functions, classes). */
export function topLevelNames(mod: Module): Set<string> {
  const names = new Set<string>();
  for (const node of body(mod)) {
    if (node.type === 'ImportDeclaration') for (const spec of node.specifiers ?? []) names.add(spec.local.name);
    if (node.type === 'VariableDeclaration') {
      for (const decl of node.declarations) {
        if (decl.id.type === 'Identifier') names.add(decl.id.name);
        if (decl.id.type === 'ObjectPattern') {
          for (const prop of decl.id.properties) if (prop.value?.type === 'Identifier') names.add(prop.value.name);
        }
      }
    }
    if ((node.type === 'FunctionDeclaration' || node.type === 'ClassDeclaration') && node.id) names.add(node.id.name);
  }
  return names;
}

/** A static value of an object literal property (numbers, strings, booleans), else undefined. */
export function literal(node: Node): string | number | boolean | undefined {
  if (!node) return undefined;
  if (node.type === 'NumericLiteral' || node.type === 'StringLiteral' || node.type === 'BooleanLiteral')
    return node.value;
  if (node.type === 'TSAsExpression' || node.type === 'TSSatisfiesExpression') return literal(node.expression);
  return undefined;
}

/** The property `name` of an ObjectExpression node. */
export function property(object: Node, name: string): Node | undefined {
  if (object?.type !== 'ObjectExpression') return undefined;
  for (const prop of object.properties) {
    if (prop.type !== 'ObjectProperty' && prop.type !== 'Property') continue;
    const key = prop.key.type === 'Identifier' ? prop.key.name : prop.key.value;
    if (key === name && !prop.computed) return prop.value;
  }
  return undefined;
}

/** Unwraps `x as T`, `x satisfies T`, `(x)`. */
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

/** The object a top-level `const name = {…}` (or `= fn({…})`) initialises, if any. */
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

/**
 * Adds one import (or require) line at the top level, as text: after the last leading import/require, else
 * after 'use strict', else before the first statement (below pragmas such as `// @ts-check`, above a JSDoc
 * that belongs to the statement). Printing a new import through recast instead loses the file's style.
 */
export function insertTopLevelLine(code: string, line: string): string {
  const mod = parse(code);
  if (!mod) throw new Error('cannot parse');
  const program = mod.$ast as Node;
  let offset = -1;
  for (const directive of program.directives ?? []) offset = Math.max(offset, directive.end);
  for (const node of program.body as Node[]) {
    const isImport =
      node.type === 'ImportDeclaration' ||
      (node.type === 'VariableDeclaration' &&
        node.declarations.every((d: Node) => d.init?.type === 'CallExpression' && d.init.callee?.name === 'require'));
    if (!isImport) break;
    offset = node.end;
  }
  if (offset >= 0) return `${code.slice(0, offset)}\n${line}${code.slice(offset)}`;
  const first = (program.body as Node[])[0];
  if (!first) {
    const start = program.interpreter ? code.indexOf('\n') + 1 : 0;
    const head = code.slice(0, start);
    const rest = code.slice(start);
    return `${head}${rest}${rest === '' || rest.endsWith('\n') ? '' : '\n'}${line}\n`;
  }
  let at: number = first.start;
  for (const comment of first.leadingComments ?? []) {
    if (comment.type === 'CommentBlock' && comment.value.startsWith('*')) {
      at = comment.start;
      break;
    }
  }
  const lineStart = code.lastIndexOf('\n', at - 1) + 1;
  return `${code.slice(0, lineStart)}${line}\n${code.slice(lineStart)}`;
}

/** `import { a } from 'x'` or `const { a } = require('x')` in the file's quote and semicolon style. */
export function importLine(code: string, kind: 'import' | 'require', name: string, source: string): string {
  const format = detectCodeFormat(code);
  const q = format.quote === 'double' ? '"' : "'";
  // Statements ending in `;` anywhere in the file mean the file uses semicolons.
  const semi = /;[ \t]*(\/\/[^\n]*)?$/m.test(code) ? ';' : '';
  return kind === 'import'
    ? `import { ${name} } from ${q}${source}${q}${semi}`
    : `const { ${name} } = require(${q}${source}${q})${semi}`;
}
