import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Detection } from './detect.js';
import {
  applyEdits,
  bindingSource,
  callsExport,
  exportedNode,
  importLine,
  importsFrom,
  insertTopLevelLine,
  isRequire,
  literal,
  type Module,
  type Node,
  parse,
  property,
  topLevelNames,
  unwrap,
  variableInit,
  wrapInCall,
} from './js-config.js';
import { parseJsonFile, setJsonValue } from './json-edit.js';
import { addDevDependencies } from './package-json.js';
import type { Finding, StepContext, StepOutcome } from './types.js';
import { planEachConfig, unconfiguredFindings } from './vitest.js';

export const JEST_PACKAGE = '@seq-test/jest';
const WRAPPER = 'withSeqTest';

const SNIPPET_CJS = `// jest.config.js
const { withSeqTest } = require('${JEST_PACKAGE}');

module.exports = withSeqTest({
  // …your config (its globalSetup/globalTeardown keep running: withSeqTest chains them)
});`;

/** Reads a file by absolute path (the overlay during init, the disk in doctor). */
export type ReadFile = (path: string) => string | undefined;

const PRESETS = new Set([JEST_PACKAGE, `${JEST_PACKAGE}/jest-preset`, `${JEST_PACKAGE}/jest-preset.js`]);
const MODULE_EXTENSIONS = ['', '.js', '.cjs', '.mjs', '.ts', '.cts', '.mts', '.json', '/index.js', '/index.cjs'];

/** A relative module path resolved against the importing file, when it names a file that exists. */
function resolveLocal(from: string, specifier: string, read: ReadFile): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = resolve(dirname(from), specifier);
  for (const ext of MODULE_EXTENSIONS) {
    const candidate = `${base}${ext}`;
    if (read(candidate) !== undefined && !(ext === '' && !/\.[cm]?[jt]s$|\.json$/.test(base))) return candidate;
  }
  return existsSync(base) ? base : undefined;
}

/**
 * Whether a Jest config (file `path`, already parsed) goes through seq-test: its export is `withSeqTest(…)`
 * called any way it can be imported (named, renamed, through a namespace or default import,
 * `require('@seq-test/jest').withSeqTest(…)`), directly or through a variable or a function's returned value,
 * or sets `preset: '@seq-test/jest'`, or is (or spreads) a local base config that does.
 */
export function jestIntegrated(mod: Module, path: string, read: ReadFile, depth = 0): boolean {
  if (depth > 4) return false;
  const { node, reexport } = exportedNode(mod);
  if (reexport) return baseIntegrated(path, reexport, read, depth);
  return node ? valueIntegrated(mod, node, path, read, depth, new Set()) : false;
}

function baseIntegrated(from: string, specifier: string, read: ReadFile, depth: number): boolean {
  const file = resolveLocal(from, specifier, read);
  if (!file) return false;
  const text = read(file);
  if (text === undefined) return false;
  if (file.endsWith('.json')) {
    try {
      return PRESETS.has((JSON.parse(text) as { preset?: string }).preset ?? '');
    } catch {
      return false;
    }
  }
  const base = parse(text);
  return base ? jestIntegrated(base, file, read, depth + 1) : false;
}

function valueIntegrated(
  mod: Module,
  raw: Node,
  path: string,
  read: ReadFile,
  depth: number,
  seen: Set<string>,
): boolean {
  const node = unwrap(raw);
  if (!node) return false;
  switch (node.type) {
    case 'CallExpression':
      if (callsExport(mod, node.callee, JEST_PACKAGE, WRAPPER)) return true;
      if (isRequire(node)) return baseIntegrated(path, node.arguments[0].value, read, depth);
      return false;
    case 'Identifier': {
      if (seen.has(node.name)) return false;
      seen.add(node.name);
      const source = bindingSource(mod, node.name);
      if (source) return baseIntegrated(path, source, read, depth);
      const init = variableInit(mod, node.name);
      return init ? valueIntegrated(mod, init, path, read, depth, seen) : false;
    }
    case 'AwaitExpression':
      return valueIntegrated(mod, node.argument, path, read, depth, seen);
    case 'ArrowFunctionExpression':
    case 'FunctionExpression': {
      if (node.body.type !== 'BlockStatement') return valueIntegrated(mod, node.body, path, read, depth, seen);
      const returned = node.body.body.filter((s: Node) => s.type === 'ReturnStatement' && s.argument);
      return (
        returned.length > 0 && returned.every((s: Node) => valueIntegrated(mod, s.argument, path, read, depth, seen))
      );
    }
    case 'ObjectExpression': {
      if (PRESETS.has(String(literal(property(node, 'preset')) ?? ''))) return true;
      // `{ ...base, testMatch }`: the spread copies the wrapped base's globalSetup, runner and reporters.
      return node.properties.some(
        (p: Node) => p.type === 'SpreadElement' && valueIntegrated(mod, p.argument, path, read, depth, seen),
      );
    }
    default:
      return false;
  }
}

/** The config object literal behind the export (through a variable or the wrapper), for reading settings. */
function configObject(mod: Module, node: Node): Node | undefined {
  let current = unwrap(node);
  if (current?.type === 'CallExpression' && callsExport(mod, current.callee, JEST_PACKAGE, WRAPPER))
    current = unwrap(current.arguments[0]);
  if (current?.type === 'Identifier') current = variableInit(mod, current.name);
  return current?.type === 'ObjectExpression' ? current : undefined;
}

/**
 * Every Jest config a test command loads is wrapped (or given the preset); a package where a script runs Jest
 * without a config gets the preset in its package.json. Configs the root runs as `projects` are covered by
 * the root config.
 */
export function planJest(ctx: StepContext, detection: Detection): StepOutcome {
  return planEachConfig('jest', detection.jest, {
    file: (file, dir) => planJestConfig(ctx, detection, file, dir),
    missing: (dir) => planJestConfig(ctx, detection, undefined, dir),
    integration: 'wrapper',
  });
}

function planJestConfig(ctx: StepContext, detection: Detection, file: string | undefined, dir: string): StepOutcome {
  const outcome: StepOutcome = { id: 'jest', status: 'changed', messages: [], snippets: [] };
  const withDeps = (ctx: StepContext, detection: Detection, outcome: StepOutcome) =>
    withDepsIn(ctx, detection, outcome, dir);
  const manual = (file: string, why: string): StepOutcome => ({
    ...outcome,
    status: 'manual',
    messages: [`cannot edit ${file} safely: ${why}; wrap the config by hand`],
    snippets: [{ title: 'jest.config.js', text: SNIPPET_CJS }],
  });
  if (file && !file.endsWith('.json')) {
    const path = join(ctx.root, file);
    const code = ctx.overlay.read(path) ?? '';
    const mod = parse(code);
    if (!mod) return manual(file, 'it does not parse');
    if (jestIntegrated(mod, path, overlayReader(ctx))) {
      outcome.status = 'done';
      outcome.messages.push(`${file} already uses ${WRAPPER}() or the ${JEST_PACKAGE} preset`);
      return withDeps(ctx, detection, outcome);
    }
    const { node, esm, reexport } = exportedNode(mod);
    if (!node) {
      return manual(
        file,
        reexport
          ? `it re-exports ${reexport}; wrap the config there`
          : 'it has no `module.exports =` or `export default`',
      );
    }
    const inner = unwrap(node);
    // withSeqTest() takes objects, promises and (async) functions; a declaration cannot be an argument.
    if (inner.type === 'FunctionDeclaration' || inner.type === 'ClassDeclaration') {
      return manual(file, 'it exports a function declaration');
    }
    const { locals, namespaces } = importsFrom(mod, JEST_PACKAGE);
    const named = locals.find((name) => callsExport(mod, { type: 'Identifier', name }, JEST_PACKAGE, WRAPPER));
    const taken = topLevelNames(mod);
    const callee = named ?? (namespaces[0] ? `${namespaces[0]}.${WRAPPER}` : taken.has(WRAPPER) ? undefined : WRAPPER);
    if (!callee) return manual(file, `the name ${WRAPPER} is taken`);
    const edits = wrapInCall(node, callee);
    if (callee === WRAPPER && !named) {
      edits.push(insertTopLevelLine(code, importLine(code, esm ? 'import' : 'require', WRAPPER, JEST_PACKAGE)));
    }
    const next = applyEdits(code, edits);
    const check = parse(next);
    if (!check || !jestIntegrated(check, path, overlayReader(ctx))) return manual(file, 'the edit did not verify');
    ctx.overlay.write(path, next, 'jest');
    outcome.messages.push(`wrap the config in ${file} with ${WRAPPER}() (its globalSetup/globalTeardown are kept)`);
    return withDeps(ctx, detection, outcome);
  }
  // JSON configs: jest.config.json or package.json "jest". A preset is the only way in, and a preset loses
  // to the project's own globalSetup/globalTeardown, so those cases are left to the user.
  const pkgJson = join(dir, 'package.json');
  const jsonFile = file ?? (ctx.overlay.exists(join(ctx.root, pkgJson)) ? pkgJson : undefined);
  if (!jsonFile) {
    const path = join(ctx.root, dir, 'jest.config.cjs');
    ctx.overlay.write(
      path,
      `const { withSeqTest } = require('${JEST_PACKAGE}');\n\n// withSeqTest(): every run of this suite waits its turn in the project's seq-test queue.\nmodule.exports = withSeqTest({});\n`,
      'jest',
    );
    outcome.messages.push(`create ${join(dir, 'jest.config.cjs')} wrapped with withSeqTest()`);
    return outcome;
  }
  const path = join(ctx.root, jsonFile);
  const text = ctx.overlay.read(path) ?? '';
  let config: Record<string, unknown>;
  try {
    const parsed = parseJsonFile(text, jsonFile) as Record<string, unknown>;
    config = (isPackageJson(jsonFile) ? (parsed.jest ?? {}) : parsed) as Record<string, unknown>;
  } catch (error) {
    return manual(jsonFile, (error as Error).message);
  }
  const where = isPackageJson(jsonFile) ? `${jsonFile} "jest"` : jsonFile;
  if (PRESETS.has(String(config.preset ?? ''))) {
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
  const next = setJsonValue(text, isPackageJson(jsonFile) ? ['jest', 'preset'] : ['preset'], JEST_PACKAGE);
  ctx.overlay.write(path, next, 'jest');
  outcome.messages.push(`set "preset": "${JEST_PACKAGE}" in ${where}`);
  return withDeps(ctx, detection, outcome);
}

function isPackageJson(file: string): boolean {
  return file === 'package.json' || file.endsWith('/package.json');
}

function withDepsIn(ctx: StepContext, detection: Detection, outcome: StepOutcome, dir: string): StepOutcome {
  const added = addDevDependencies(ctx, detection, [JEST_PACKAGE], 'jest', dir);
  if (added.length > 0) {
    outcome.status = 'changed';
    outcome.messages.push(`add ${added.join(', ')} to devDependencies (then run your package manager's install)`);
  }
  return outcome;
}

export function auditJest(detection: Detection, read: (file: string) => string | undefined): Finding[] {
  if (!detection.jest.used) return [];
  const { configs, unconfigured, packages } = detection.jest;
  const findings: Finding[] = [];
  findings.push(...unconfiguredFindings('jest', unconfigured, JEST_PACKAGE));
  if (configs.length === 0 && unconfigured.length === 0) {
    return packages.length > 1 ? findings : auditJestConfig(detection, undefined, read);
  }
  for (const { file } of configs) findings.push(...auditJestConfig(detection, file, read));
  return findings;
}

function auditJestConfig(
  detection: Detection,
  file: string | undefined,
  read: (file: string) => string | undefined,
): Finding[] {
  const findings: Finding[] = [];
  let integrated = false;
  let maxWorkers: unknown;
  let where = file ?? 'package.json "jest"';
  if (file && !file.endsWith('.json')) {
    const code = read(file) ?? '';
    const mod = parse(code);
    if (mod) {
      integrated = jestIntegrated(mod, join(detection.root, file), (p) => read(p));
      const { node } = exportedNode(mod);
      maxWorkers = node ? literal(property(configObject(mod, node), 'maxWorkers')) : undefined;
    } else {
      integrated = code.includes(JEST_PACKAGE);
    }
  } else {
    let config: Record<string, unknown> = {};
    try {
      const text = read(file ?? 'package.json') ?? '{}';
      const parsed = JSON.parse(text) as Record<string, unknown>;
      config = ((file && !isPackageJson(file) ? parsed : parsed.jest) ?? {}) as Record<string, unknown>;
    } catch {}
    integrated = PRESETS.has(String(config.preset ?? ''));
    maxWorkers = config.maxWorkers;
    where = file
      ? isPackageJson(file)
        ? `${file} "jest"`
        : file
      : detection.jest.inPackageJson
        ? 'package.json "jest"'
        : 'package.json';
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

function overlayReader(ctx: StepContext): ReadFile {
  return (path) => ctx.overlay.read(path) ?? undefined;
}
