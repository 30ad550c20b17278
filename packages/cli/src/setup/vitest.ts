import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Detection } from './detect.js';
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
import type { Finding, StepContext, StepOutcome } from './types.js';

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

export function planVitest(ctx: StepContext, detection: Detection): StepOutcome {
  const outcome: StepOutcome = { id: 'vitest', status: 'changed', messages: [], snippets: [] };
  const file = detection.vitest.configFile;
  if (!file) {
    const ts = existsSync(join(ctx.root, 'tsconfig.json')) || 'typescript' in devDeps(detection);
    const name = ts ? 'vitest.config.ts' : 'vitest.config.mjs';
    ctx.overlay.write(
      join(ctx.root, name),
      `import { seqTest } from '${VITEST_PACKAGE}';\nimport { defineConfig } from 'vitest/config';\n\n// seqTest(): every run of this suite waits its turn in the project's seq-test queue.\nexport default defineConfig({\n  plugins: [seqTest()],\n});\n`,
      'vitest',
    );
    outcome.messages.push(`create ${name} with the seqTest() plugin`);
    addDeps(ctx, detection, outcome);
    return outcome;
  }
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
    addDeps(ctx, detection, outcome);
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
  addDeps(ctx, detection, outcome);
  return outcome;
}

function addDeps(ctx: StepContext, detection: Detection, outcome: StepOutcome): void {
  const added = addDevDependencies(ctx, detection, [VITEST_PACKAGE], 'vitest');
  if (added.length > 0) {
    outcome.status = 'changed';
    outcome.messages.push(`add ${added.join(', ')} to devDependencies (then run your package manager's install)`);
  }
}

function singleWorkerOff(mod: Module, object: Node): boolean {
  const call = pluginCall(mod, object);
  return literal(property(unwrap(call?.arguments[0]), 'singleWorker')) === false;
}

function devDeps(detection: Detection): Record<string, string> {
  return { ...detection.packageJson?.data.dependencies, ...detection.packageJson?.data.devDependencies };
}

export function auditVitest(detection: Detection, read: (file: string) => string | undefined): Finding[] {
  if (!detection.vitest.used) return [];
  const findings: Finding[] = [];
  const file = detection.vitest.configFile;
  if (!file) {
    return [
      {
        severity: 'error',
        check: 'vitest.integration',
        message: `Vitest is used (${detection.vitest.reasons.join(', ')}) but has no config with the seqTest() plugin: a plain \`vitest\` run does not queue`,
        fix: 'seq-test init --vitest',
      },
    ];
  }
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
  } else if (!(VITEST_PACKAGE in devDeps(detection)) && detection.packageJson) {
    findings.push({
      severity: 'warning',
      check: 'vitest.dependency',
      file: 'package.json',
      message: `${file} imports ${VITEST_PACKAGE}, which package.json does not list`,
      fix: `npm install -D ${VITEST_PACKAGE}`,
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
