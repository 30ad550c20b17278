import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Detection, type RunnerUse, readText } from './detect.js';
import {
  appendItem,
  applyEdits,
  callsExport,
  type Edit,
  exportedNode,
  importLine,
  importsFrom,
  insertTopLevelLine,
  literal,
  type Module,
  type Node,
  parse,
  property,
  topLevelNames,
  unwrap,
  variableInit,
} from './js-config.js';
import { addDevDependencies } from './package-json.js';
import { type Finding, mergeOutcomes, type StepContext, type StepOutcome } from './types.js';

export const VITEST_PACKAGE = '@seq-test/vitest';
const IMPORTED = 'seqTest';

const SNIPPET = `import { seqTest } from '${VITEST_PACKAGE}';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [seqTest()],
  // …the rest of your config
});`;

/** Finds the config object literal a Vitest config file exports, if it is one we can edit safely. */
function configObject(mod: Module): { object?: Node; why?: string } {
  const exported = exportedNode(mod).node;
  if (!exported) return { why: 'it has no default export' };
  let node = unwrap(exported);
  if (node.type === 'Identifier') node = variableInit(mod, node.name);
  for (let depth = 0; node && depth < 3; depth++) {
    if (node.type === 'ObjectExpression') return { object: node };
    if (node.type === 'CallExpression' && node.callee.type === 'Identifier') {
      const name: string = node.callee.name;
      if (name === 'defineConfig' || name === 'defineProject') {
        const arg = unwrap(node.arguments[0]);
        if (!arg) return { why: `${name}() has no argument` };
        if (arg.type !== 'ObjectExpression') return { why: `${name}() is given a function or variable, not an object` };
        node = arg;
        continue;
      }
      if (name === 'mergeConfig') {
        node = unwrap(node.arguments[node.arguments.length - 1]);
        continue;
      }
    }
    return { why: 'its default export is not an object literal or defineConfig({...})' };
  }
  return { why: 'its default export is not an object literal or defineConfig({...})' };
}

/** Whether the config has the plugin: imported from @seq-test/vitest and called in `plugins`. */
function pluginState(mod: Module, object: Node | undefined): { imported: boolean; local?: string; inPlugins: boolean } {
  const { locals, found } = importsFrom(mod, VITEST_PACKAGE);
  const local = locals.find((name) => callsExport(mod, { type: 'Identifier', name }, VITEST_PACKAGE, IMPORTED));
  const inPlugins = pluginCall(mod, object) !== undefined;
  return { imported: found, ...(local ? { local } : {}), inPlugins };
}

/** The seqTest(…) call in the config's `plugins` array (however it was imported), if any. */
function pluginCall(mod: Module, object: Node | undefined): Node | undefined {
  const plugins = unwrap(property(object, 'plugins'));
  if (plugins?.type !== 'ArrayExpression') return undefined;
  return plugins.elements.find(
    (e: Node) => e?.type === 'CallExpression' && callsExport(mod, e.callee, VITEST_PACKAGE, IMPORTED),
  );
}

/**
 * Every Vitest config a test command loads gets the plugin; a directory where a script runs Vitest without a
 * config gets a new one. A new root config is written only for a single-package repository, where a plain
 * `vitest` loads it; in a workspace nothing is created where no test command would load it.
 */
export function planVitest(ctx: StepContext, detection: Detection): StepOutcome {
  return planEachConfig('vitest', detection.vitest, {
    file: (file, dir) => planVitestFile(ctx, detection, file, dir),
    missing: (dir) => createVitestConfig(ctx, detection, dir),
    integration: 'plugin',
  });
}

function createVitestConfig(ctx: StepContext, detection: Detection, dir: string): StepOutcome {
  const outcome: StepOutcome = { id: 'vitest', status: 'changed', messages: [], snippets: [] };
  const ts = existsSync(join(ctx.root, dir, 'tsconfig.json')) || 'typescript' in devDeps(detection);
  const name = join(dir, ts ? 'vitest.config.ts' : 'vitest.config.mjs');
  ctx.overlay.write(
    join(ctx.root, name),
    `import { seqTest } from '${VITEST_PACKAGE}';\nimport { defineConfig } from 'vitest/config';\n\n// seqTest(): every run of this suite waits its turn in the project's seq-test queue.\nexport default defineConfig({\n  plugins: [seqTest()],\n});\n`,
    'vitest',
  );
  const by = detection.vitest.unconfigured.find((u) => u.dir === dir)?.loadedBy ?? [];
  outcome.messages.push(
    `create ${name} with the seqTest() plugin${by.length > 0 ? ` (loaded by ${by.join(', ')})` : ''}`,
  );
  addDeps(ctx, detection, outcome, dir);
  return outcome;
}

/** The workspace package a file belongs to: the longest package dir that contains it ('' for the root). */
export function packageOf(packages: string[], file: string): string {
  let best = '';
  for (const dir of packages) if (dir && file.startsWith(`${dir}/`) && dir.length > best.length) best = dir;
  return best;
}

/** doctor: a package where a script runs the runner with no config, so without the integration. */
export function unconfiguredFindings(
  runner: 'vitest' | 'jest',
  unconfigured: RunnerUse['unconfigured'],
  integration: string,
): Finding[] {
  return unconfigured.map(({ dir, loadedBy }) => ({
    severity: 'error',
    check: `${runner}.integration`,
    file: join(dir, 'package.json'),
    message: `${loadedBy.join(', ')} run${loadedBy.length === 1 ? 's' : ''} ${runner} in ${dir || 'the root'} with no config there, so without ${integration}: those runs do not queue`,
    fix: `seq-test init --${runner}`,
  }));
}

/**
 * One step over every config a runner's test commands load (`file`), and every package dir where a script
 * runs it without a config (`missing`); a single-package repository without either gets `missing('')`.
 */
export function planEachConfig(
  id: 'vitest' | 'jest',
  use: RunnerUse,
  plan: {
    file: (file: string, dir: string) => StepOutcome;
    missing: (dir: string) => StepOutcome;
    integration: string;
  },
): StepOutcome {
  const parts = use.configs.map((c) => plan.file(c.file, packageOf(use.packages, c.file)));
  const dirs = use.unconfigured.map((u) => u.dir);
  if (use.configs.length === 0 && dirs.length === 0 && use.packages.length === 1) dirs.push('');
  parts.push(...dirs.map((dir) => plan.missing(dir)));
  if (parts.length === 0) {
    return {
      id,
      status: 'skipped',
      messages: [`no package.json script runs ${id} and no package has a ${id} config: nothing would load one`],
      snippets: [],
    };
  }
  const outcome = mergeOutcomes(id, parts);
  if (use.projects.length > 0) {
    outcome.messages.push(
      `projects run through the root config (its ${plan.integration} covers them): ${use.projects.join(', ')}`,
    );
  }
  return outcome;
}

function planVitestFile(ctx: StepContext, detection: Detection, file: string, dir: string): StepOutcome {
  const outcome: StepOutcome = { id: 'vitest', status: 'changed', messages: [], snippets: [] };
  const path = join(ctx.root, file);
  const code = ctx.overlay.read(path) ?? '';
  const manual = (why: string): StepOutcome => ({
    ...outcome,
    status: 'manual',
    messages: [`cannot edit ${file} safely: ${why}; add the plugin by hand`],
    snippets: [{ title: file, text: SNIPPET }],
  });
  const mod = parse(code);
  if (!mod) return manual('it does not parse');
  const { object, why } = configObject(mod);
  if (!object) return manual(why ?? 'unknown layout');
  const state = pluginState(mod, object);
  if (state.imported && state.inPlugins) {
    outcome.status = 'done';
    outcome.messages.push(`${file} already uses seqTest()`);
    addDeps(ctx, detection, outcome, dir);
    return outcome;
  }
  const taken = topLevelNames(mod);
  const namespace = state.local ? undefined : importsFrom(mod, VITEST_PACKAGE).namespaces[0];
  const local = state.local ?? (taken.has(IMPORTED) ? 'seqTestPlugin' : IMPORTED);
  if (!state.local && !namespace && taken.has(local)) {
    return manual(`the names ${IMPORTED} and ${local} are both taken`);
  }
  const call = namespace ? `${namespace}.${IMPORTED}()` : `${local}()`;
  const plugins = property(object, 'plugins');
  const edits: Edit[] = [];
  if (plugins === undefined) {
    edits.push(...appendItem(code, object, object.properties, `plugins: [${call}]`));
  } else if (unwrap(plugins).type === 'ArrayExpression') {
    edits.push(...appendItem(code, unwrap(plugins), unwrap(plugins).elements, call));
  } else {
    return manual('its `plugins` is not an array literal');
  }
  if (!state.imported || (!state.local && !namespace)) {
    const kind = /\.c[jt]s$/.test(file) ? 'require' : 'import';
    const spec = local === IMPORTED ? IMPORTED : `${IMPORTED}: ${local}`;
    const line =
      kind === 'import'
        ? importLine(code, 'import', local === IMPORTED ? IMPORTED : `${IMPORTED} as ${local}`, VITEST_PACKAGE)
        : importLine(code, 'require', spec, VITEST_PACKAGE);
    edits.push(insertTopLevelLine(code, line));
  }
  const next = applyEdits(code, edits);
  // Check our own work: the result must parse and have the plugin, or we write nothing.
  const check = parse(next);
  const checkObject = check ? configObject(check).object : undefined;
  if (!check || !checkObject || !pluginState(check, checkObject).inPlugins) return manual('the edit did not verify');
  ctx.overlay.write(path, next, 'vitest');
  outcome.messages.push(`add seqTest() to the plugins of ${file}`);
  addDeps(ctx, detection, outcome, dir);
  return outcome;
}

function addDeps(ctx: StepContext, detection: Detection, outcome: StepOutcome, dir: string): void {
  const added = addDevDependencies(ctx, detection, [VITEST_PACKAGE], 'vitest', dir);
  if (added.length > 0) {
    outcome.status = 'changed';
    outcome.messages.push(
      `add ${added.join(', ')} to devDependencies of ${join(dir, 'package.json')} (then run your package manager's install)`,
    );
  }
}

function singleWorkerOff(mod: Module, object: Node): boolean {
  const call = pluginCall(mod, object);
  return literal(property(unwrap(call?.arguments[0]), 'singleWorker')) === false;
}

/** Whether the package.json in `dir` declares `name` (any kind of dependency); true when there is none. */
function declares(root: string, dir: string, name: string): boolean {
  const text = readText(join(root, dir, 'package.json'));
  if (text === undefined) return true;
  try {
    const pkg = JSON.parse(text) as Record<string, Record<string, string> | undefined>;
    return name in { ...pkg.dependencies, ...pkg.devDependencies, ...pkg.peerDependencies };
  } catch {
    return true;
  }
}

function devDeps(detection: Detection): Record<string, string> {
  return { ...detection.packageJson?.data.dependencies, ...detection.packageJson?.data.devDependencies };
}

export function auditVitest(detection: Detection, read: (file: string) => string | undefined): Finding[] {
  if (!detection.vitest.used) return [];
  const { configs, unconfigured, packages } = detection.vitest;
  const findings: Finding[] = [];
  findings.push(...unconfiguredFindings('vitest', unconfigured, 'the seqTest() plugin'));
  if (configs.length === 0 && unconfigured.length === 0) {
    if (packages.length > 1) return findings;
    return [
      {
        severity: 'error',
        check: 'vitest.integration',
        message: `Vitest is used (${detection.vitest.reasons.join(', ')}) but has no config with the seqTest() plugin: a plain \`vitest\` run does not queue`,
        fix: 'seq-test init --vitest',
      },
    ];
  }
  for (const { file } of configs) findings.push(...auditVitestFile(detection, file, packageOf(packages, file), read));
  return findings;
}

function auditVitestFile(
  detection: Detection,
  file: string,
  dir: string,
  read: (file: string) => string | undefined,
): Finding[] {
  const findings: Finding[] = [];
  const code = read(file) ?? '';
  const mod = parse(code);
  const object = mod ? configObject(mod).object : undefined;
  const integrated = mod && object ? pluginState(mod, object).inPlugins : code.includes(VITEST_PACKAGE);
  if (!integrated) {
    findings.push({
      severity: 'error',
      check: 'vitest.integration',
      file,
      message: `${file} does not use the seqTest() plugin: Vitest runs do not wait for each other`,
      fix: 'seq-test init --vitest',
    });
  } else if (!declares(detection.root, dir, VITEST_PACKAGE)) {
    findings.push({
      severity: 'warning',
      check: 'vitest.dependency',
      file: join(dir, 'package.json'),
      message: `${file} imports ${VITEST_PACKAGE}, which ${join(dir, 'package.json')} does not list`,
      fix: `${detection.packageManager === 'npm' ? 'npm install -D' : `${detection.packageManager} add -D`} ${VITEST_PACKAGE}${dir ? ` (in ${dir})` : ''}`,
    });
  }
  // The plugin runs one test file at a time unless it is given `singleWorker: false`.
  if (integrated && mod && object && !singleWorkerOff(mod, object)) return findings;
  const test = unwrap(property(object, 'test'));
  const maxWorkers = literal(property(test, 'maxWorkers'));
  const fileParallelism = literal(property(test, 'fileParallelism'));
  if (fileParallelism === false || maxWorkers === 1 || maxWorkers === '1') return findings;
  if (maxWorkers !== undefined) {
    findings.push({
      severity: 'warning',
      check: 'vitest.workers',
      file,
      message: `${file} sets test.maxWorkers to ${JSON.stringify(maxWorkers)}: one run may start that many workers at once`,
      fix: `lower test.maxWorkers in ${file}, or cap the whole run: seq-test run --max-memory 4G -- vitest run (or "maxMemory" in package.json "seqTest")`,
    });
  } else if (object && integrated) {
    findings.push({
      severity: 'info',
      check: 'vitest.workers',
      file,
      message: `${file} does not set test.maxWorkers: Vitest starts one worker per CPU core in each run`,
      fix: `set test.maxWorkers in ${file} if a run uses too much memory`,
    });
  }
  return findings;
}
