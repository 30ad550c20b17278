import { join } from 'node:path';
import type { Detection } from './detect.js';
import {
  body,
  importLine,
  importsFrom,
  insertTopLevelLine,
  literal,
  type Module,
  type Node,
  parse,
  print,
  property,
  topLevelNames,
  unwrap,
  variableInit,
} from './js-config.js';
import { parseJsonFile, setJsonValue } from './json-edit.js';
import { addDevDependencies } from './package-json.js';
import type { Finding, StepContext, StepOutcome } from './types.js';

export const JEST_PACKAGE = '@seq-test/jest';
const WRAPPER = 'withSeqTest';

const SNIPPET_CJS = `// jest.config.js
const { withSeqTest } = require('${JEST_PACKAGE}');

module.exports = withSeqTest({
  // …your config (its globalSetup/globalTeardown keep running: withSeqTest chains them)
});`;

/** The node a Jest config file exports, and the statement holding it. */
function exported(mod: Module): { node?: Node; set?: (node: Node) => void; esm: boolean } {
  for (const statement of body(mod)) {
    if (statement.type === 'ExportDefaultDeclaration') {
      return { node: statement.declaration, set: (n) => (statement.declaration = n), esm: true };
    }
    const e = statement.type === 'ExpressionStatement' ? statement.expression : undefined;
    if (
      e?.type === 'AssignmentExpression' &&
      e.left.type === 'MemberExpression' &&
      e.left.object.name === 'module' &&
      e.left.property.name === 'exports'
    ) {
      return { node: e.right, set: (n) => (e.right = n), esm: false };
    }
  }
  return { esm: true };
}

/** The config object literal behind the export (through a variable), for reading settings. */
function configObject(mod: Module, node: Node): Node | undefined {
  let current = unwrap(node);
  if (current?.type === 'CallExpression' && current.callee?.name === WRAPPER) current = unwrap(current.arguments[0]);
  if (current?.type === 'Identifier') current = variableInit(mod, current.name);
  return current?.type === 'ObjectExpression' ? current : undefined;
}

function integratedJs(mod: Module): boolean {
  const { node } = exported(mod);
  if (!node) return false;
  const { locals } = importsFrom(mod, JEST_PACKAGE);
  const top = unwrap(node);
  if (top?.type === 'CallExpression' && locals.includes(top.callee?.name)) return true;
  return literal(property(configObject(mod, node), 'preset')) === JEST_PACKAGE;
}

export function planJest(ctx: StepContext, detection: Detection): StepOutcome {
  const outcome: StepOutcome = { id: 'jest', status: 'changed', messages: [], snippets: [] };
  const manual = (file: string, why: string): StepOutcome => ({
    ...outcome,
    status: 'manual',
    messages: [`cannot edit ${file} safely: ${why}; wrap the config by hand`],
    snippets: [{ title: 'jest.config.js', text: SNIPPET_CJS }],
  });
  const file = detection.jest.configFile;
  if (file && !file.endsWith('.json')) {
    const path = join(ctx.root, file);
    const code = ctx.overlay.read(path) ?? '';
    const mod = parse(code);
    if (!mod) return manual(file, 'it does not parse');
    if (integratedJs(mod)) {
      outcome.status = 'done';
      outcome.messages.push(`${file} already uses ${WRAPPER}()`);
      return withDeps(ctx, detection, outcome);
    }
    const { node, set, esm } = exported(mod);
    if (!node || !set) return manual(file, 'it has no `module.exports =` or `export default`');
    const inner = unwrap(node);
    // withSeqTest() takes objects, promises and (async) functions; a declaration cannot be an argument.
    if (inner.type === 'FunctionDeclaration' || inner.type === 'ClassDeclaration') {
      return manual(file, 'it exports a function declaration');
    }
    const { locals, found } = importsFrom(mod, JEST_PACKAGE);
    const taken = topLevelNames(mod);
    const local = locals[0] ?? (taken.has(WRAPPER) ? undefined : WRAPPER);
    if (!local) return manual(file, `the name ${WRAPPER} is taken`);
    set({ type: 'CallExpression', callee: { type: 'Identifier', name: local }, arguments: [node] });
    let next = print(mod, code);
    if (!found) next = insertTopLevelLine(next, importLine(code, esm ? 'import' : 'require', WRAPPER, JEST_PACKAGE));
    const check = parse(next);
    if (!check || !integratedJs(check)) return manual(file, 'the edit did not verify');
    ctx.overlay.write(path, next, 'jest');
    outcome.messages.push(`wrap the config in ${file} with ${WRAPPER}() (its globalSetup/globalTeardown are kept)`);
    return withDeps(ctx, detection, outcome);
  }
  // JSON configs: jest.config.json or package.json "jest". A preset is the only way in, and a preset loses
  // to the project's own globalSetup/globalTeardown, so those cases are left to the user.
  const jsonFile = file ?? (detection.jest.inPackageJson || detection.packageJson ? 'package.json' : undefined);
  if (!jsonFile) {
    const path = join(ctx.root, 'jest.config.cjs');
    ctx.overlay.write(
      path,
      `const { withSeqTest } = require('${JEST_PACKAGE}');\n\n// withSeqTest(): every run of this suite waits its turn in the project's seq-test queue.\nmodule.exports = withSeqTest({});\n`,
      'jest',
    );
    outcome.messages.push('create jest.config.cjs wrapped with withSeqTest()');
    return outcome;
  }
  const path = join(ctx.root, jsonFile);
  const text = ctx.overlay.read(path) ?? '';
  let config: Record<string, unknown>;
  try {
    const parsed = parseJsonFile(text, jsonFile) as Record<string, unknown>;
    config = (jsonFile === 'package.json' ? (parsed.jest ?? {}) : parsed) as Record<string, unknown>;
  } catch (error) {
    return manual(jsonFile, (error as Error).message);
  }
  const where = jsonFile === 'package.json' ? 'package.json "jest"' : jsonFile;
  if (config.preset === JEST_PACKAGE) {
    outcome.status = 'done';
    outcome.messages.push(`${where} already uses the ${JEST_PACKAGE} preset`);
    return withDeps(ctx, detection, outcome);
  }
  // Presets do not chain: the project's own value of any of these would replace the preset's.
  const conflicts = ['preset', 'globalSetup', 'globalTeardown', 'runner', 'reporters'].filter(
    (k) => config[k] !== undefined,
  );
  if (conflicts.length > 0) {
    return manual(
      where,
      `it sets ${conflicts.join(', ')}, which would replace the preset's (presets do not chain); move the config to jest.config.js and wrap it with ${WRAPPER}()`,
    );
  }
  const next = setJsonValue(text, jsonFile === 'package.json' ? ['jest', 'preset'] : ['preset'], JEST_PACKAGE);
  ctx.overlay.write(path, next, 'jest');
  outcome.messages.push(`set "preset": "${JEST_PACKAGE}" in ${where}`);
  return withDeps(ctx, detection, outcome);
}

function withDeps(ctx: StepContext, detection: Detection, outcome: StepOutcome): StepOutcome {
  const added = addDevDependencies(ctx, detection, [JEST_PACKAGE], 'jest');
  if (added.length > 0) {
    outcome.status = 'changed';
    outcome.messages.push(`add ${added.join(', ')} to devDependencies (then run your package manager's install)`);
  }
  return outcome;
}

export function auditJest(detection: Detection, read: (file: string) => string | undefined): Finding[] {
  if (!detection.jest.used) return [];
  const findings: Finding[] = [];
  const file = detection.jest.configFile;
  let integrated = false;
  let maxWorkers: unknown;
  let where = file ?? 'package.json "jest"';
  if (file && !file.endsWith('.json')) {
    const code = read(file) ?? '';
    const mod = parse(code);
    if (mod) {
      integrated = integratedJs(mod);
      const { node } = exported(mod);
      maxWorkers = node ? literal(property(configObject(mod, node), 'maxWorkers')) : undefined;
    } else {
      integrated = code.includes(JEST_PACKAGE);
    }
  } else {
    let config: Record<string, unknown> = {};
    try {
      const text = read(file ?? 'package.json') ?? '{}';
      const parsed = JSON.parse(text) as Record<string, unknown>;
      config = ((file ? parsed : parsed.jest) ?? {}) as Record<string, unknown>;
    } catch {}
    integrated = config.preset === JEST_PACKAGE;
    maxWorkers = config.maxWorkers;
    where = file ?? (detection.jest.inPackageJson ? 'package.json "jest"' : 'package.json');
  }
  if (!integrated) {
    findings.push({
      severity: 'error',
      check: 'jest.integration',
      ...(file ? { file } : detection.packageJson ? { file: 'package.json' } : {}),
      message: `${where} does not use ${JEST_PACKAGE}: Jest runs do not wait for each other`,
      fix: 'seq-test init --jest',
    });
  }
  // withSeqTest() and the preset run one worker; only a config without them can start several.
  if (integrated) return findings;
  const script = detection.testScript ?? '';
  const serialScript = /(^|\s)(-i|--runInBand|--maxWorkers[= ]1)(\s|$)/.test(script);
  if (serialScript || maxWorkers === 1 || maxWorkers === '1') return findings;
  if (maxWorkers !== undefined) {
    findings.push({
      severity: 'warning',
      check: 'jest.workers',
      file: file ?? 'package.json',
      message: `${where} sets maxWorkers to ${JSON.stringify(maxWorkers)}: one run may start that many workers at once`,
      fix: `lower maxWorkers, or cap the whole run: seq-test run --max-memory 4G -- jest (or "maxMemory" in package.json "seqTest")`,
    });
  }
  return findings;
}
