import { readFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { type Detection, readText, safeList } from './detect.js';
import {
  DISTRIBUTION,
  PLUGIN_MODULE,
  PLUGIN_PACKAGE,
  TEMPLATE_VERSION,
  type VendoredDrift,
  vendoredDrift,
  type WriteResult,
  writePytestFiles,
} from './pytest-files.js';
import { splitArgs } from './shell-words.js';
import type { Finding, StepContext, StepOutcome } from './types.js';

/**
 * Plans the pytest plugin files with writePytestFiles() (pytest-files.ts), the single source of what they
 * contain: its dry run says what it would write (with the content), which init then shows as a diff, composes
 * with the other steps and writes with the same backups. Files it would not touch (hand-edited, or a
 * conftest.py it cannot edit) come back as messages.
 */
export async function planPytest(ctx: StepContext, _detection: Detection): Promise<StepOutcome> {
  const outcome: StepOutcome = { id: 'pytest', status: 'changed', messages: [], snippets: [] };
  const declared = declaredDistribution(ctx.root);
  if (declared) {
    return {
      ...outcome,
      status: 'done',
      messages: [
        `the packaged plugin: ${DISTRIBUTION} is declared in ${declared} (its pytest11 entry point loads it); nothing to vendor`,
      ],
    };
  }
  let result: WriteResult;
  try {
    result = writePytestFiles(ctx.root, { force: ctx.force, dryRun: true });
  } catch (error) {
    return { ...outcome, status: 'manual', messages: [`pytest files: ${(error as Error).message}`] };
  }
  let changed = 0;
  let manual = 0;
  const created: string[] = [];
  for (const change of result.changes) {
    const path = isAbsolute(change.path) ? change.path : join(ctx.root, change.path);
    const name = relative(ctx.root, path);
    if (change.action === 'unchanged') continue;
    if (change.content !== undefined && ['create', 'upgrade', 'overwrite', 'edit'].includes(change.action)) {
      ctx.overlay.write(path, change.content, 'pytest');
      if (change.action === 'create' && name.startsWith(`${PLUGIN_PACKAGE}/`)) created.push(name);
      else outcome.messages.push(`${change.action} ${name}${change.reason ? ` (${change.reason})` : ''}`);
      changed++;
    } else {
      manual++;
      outcome.messages.push(`${name}: ${change.reason ?? change.action}`);
    }
  }
  if (created.length > 0) {
    outcome.messages.unshift(
      `vendor the plugin: ${PLUGIN_PACKAGE}/ (${created.length} generated files, stdlib only), loaded from conftest.py; to use the packaged plugin instead, pip install ${DISTRIBUTION} (its wheel ships in the npm package @seq-test/pytest, under dist/) and skip this step`,
    );
  }
  if (manual > 0) outcome.status = 'manual';
  else if (changed === 0) {
    outcome.status = 'done';
    outcome.messages.push(`the vendored pytest plugin is set up (conftest.py loads it)`);
  }
  return outcome;
}

// ---------------------------------------------------------------------------------------------------------
// Reading pytest's settings (doctor)

/** `addopts` of each pytest config file, split into arguments. */
export function pytestAddopts(root: string, detection: Detection): { file: string; args: string[] }[] {
  const found: { file: string; args: string[] }[] = [];
  for (const file of detection.pytest.configFiles) {
    let text: string;
    try {
      text = readFileSync(join(root, file), 'utf8');
    } catch {
      continue;
    }
    let addopts: unknown;
    if (file === 'pyproject.toml') {
      try {
        const toml = parseToml(text) as {
          tool?: { pytest?: { addopts?: unknown; ini_options?: { addopts?: unknown } } };
        };
        addopts = toml.tool?.pytest?.ini_options?.addopts ?? toml.tool?.pytest?.addopts;
      } catch {
        continue;
      }
    } else {
      const section = file === 'setup.cfg' ? 'tool:pytest' : 'pytest';
      addopts = iniValue(text, section, 'addopts');
    }
    if (addopts === undefined) continue;
    const args = Array.isArray(addopts) ? addopts.map(String) : splitArgs(String(addopts));
    found.push({ file, args });
  }
  return found;
}

/** pytest-xdist's worker count in the arguments (`-n 4`, `-nauto`, `--numprocesses=logical`), if any. */
export function xdistWorkers(args: string[]): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '-n' || arg === '--numprocesses') value = args[i + 1];
    else if (arg.startsWith('--numprocesses=')) value = arg.slice('--numprocesses='.length);
    else if (/^-n.+/.test(arg)) value = arg.slice(2).replace(/^=/, '');
  }
  return value;
}

/**
 * One value from an INI file the way pytest's iniconfig reads it: `key = value` or `key: value`, continued
 * on following indented lines; `#` and `;` start comment lines.
 */
export function iniValue(text: string, section: string, key: string): string | undefined {
  let current: string | undefined;
  let value: string | undefined;
  let collecting = false;
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*[#;]/.test(raw) || raw.trim() === '') continue;
    if (collecting && /^\s/.test(raw)) {
      value = `${value ?? ''} ${raw.trim()}`;
      continue;
    }
    collecting = false;
    const header = /^\[([^\]]+)\]/.exec(raw);
    if (header) {
      current = header[1]?.trim();
      continue;
    }
    if (current !== section) continue;
    const pair = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(raw);
    if (pair && pair[1]?.trim() === key) {
      value = (pair[2] ?? '').replace(/\s+[#;].*$/, '').trim();
      collecting = true;
    }
  }
  return value?.trim();
}

/**
 * Where the project declares the packaged plugin (seq-test-pytest) as a Python dependency: pyproject.toml
 * (dependencies, optional ones, dependency groups), requirements*.txt, setup.cfg or tox.ini. The file, or
 * undefined.
 */
export function declaredDistribution(root: string): string | undefined {
  const name = new RegExp(`(^|[\\s"'\\[,=])${DISTRIBUTION.replace(/-/g, '[-_.]')}(\\b|$)`, 'im');
  const files = [
    'pyproject.toml',
    'setup.cfg',
    'tox.ini',
    ...safeList(root).filter((f) => /^requirements.*\.txt$/.test(f)),
  ];
  for (const file of files) {
    const text = readText(join(root, file));
    if (text !== undefined && name.test(text.replace(/#.*$/gm, ''))) return file;
  }
  return undefined;
}

/**
 * How pytest loads the seq-test plugin, if it does: the vendored package (or the older top-level module) in
 * the root conftest.py's `pytest_plugins`, `-p seq_test_plugin` in addopts, or the packaged distribution
 * declared as a dependency.
 */
export function pytestIntegration(root: string, addopts: { args: string[] }[]): string | undefined {
  if (
    addopts.some(({ args }) =>
      args.some((a, i) => (a === '-p' && args[i + 1] === PLUGIN_MODULE) || a === `-p${PLUGIN_MODULE}`),
    )
  ) {
    return 'addopts -p';
  }
  const declared = declaredDistribution(root);
  if (declared) return `${DISTRIBUTION} (declared in ${declared})`;
  const conftest = readText(join(root, 'conftest.py')) ?? '';
  const loads = (module: string) =>
    /\bpytest_plugins\b/.test(conftest) && new RegExp(`["']${module}["']`).test(conftest);
  if (loads(PLUGIN_PACKAGE)) return `${PLUGIN_PACKAGE}/ (vendored)`;
  if (loads(PLUGIN_MODULE)) return `${PLUGIN_MODULE}.py (vendored)`;
  return undefined;
}

/** What doctor says of each vendored module that is not what this seq-test writes. */
const DRIFT: Record<VendoredDrift['state'], (d: VendoredDrift) => Omit<Finding, 'check' | 'file'>> = {
  older: (d) => ({
    severity: 'warning',
    message: `was written by an older seq-test (template version ${d.version}; this one writes ${TEMPLATE_VERSION}): it lacks the fixes and protocol changes since`,
    fix: 'seq-test init --pytest (upgrades it in place)',
  }),
  other: () => ({
    severity: 'warning',
    message: `differs from what this seq-test writes (another build of template version ${TEMPLATE_VERSION})`,
    fix: 'seq-test init --pytest (upgrades it in place)',
  }),
  newer: (d) => ({
    severity: 'warning',
    message: `was written by a newer seq-test (template version ${d.version}; this one writes ${TEMPLATE_VERSION})`,
    fix: 'upgrade seq-test in this project (npm install -D seq-test@latest); init leaves a newer copy alone',
  }),
  edited: () => ({
    severity: 'info',
    message: 'was edited by hand: init --pytest no longer upgrades it',
    fix: 'seq-test init --pytest --force (replaces your edits with the current version)',
  }),
  foreign: () => ({
    severity: 'info',
    message: 'has no seq-test header: init --pytest leaves it alone',
    fix: 'seq-test init --pytest --force (replaces it with the current version)',
  }),
  missing: () => ({
    severity: 'error',
    message: 'is missing: pytest cannot load the vendored plugin',
    fix: 'seq-test init --pytest',
  }),
};

function auditVendored(root: string): Finding[] {
  return vendoredDrift(root).map((drift) => {
    const file = relative(root, drift.path);
    const { message, ...rest } = DRIFT[drift.state](drift);
    return { check: 'pytest.vendored', file, message: `${file} ${message}`, ...rest };
  });
}

export function auditPytest(root: string, detection: Detection): Finding[] {
  if (!detection.pytest.used) return [];
  const findings: Finding[] = [];
  const addopts = pytestAddopts(root, detection);
  const integration = pytestIntegration(root, addopts);
  if (integration?.endsWith('(vendored)')) findings.push(...auditVendored(root));
  if (!integration) {
    findings.push({
      severity: 'error',
      check: 'pytest.integration',
      file: 'conftest.py',
      message: `pytest is used (${detection.pytest.reasons.join(', ')}) but neither loads the vendored plugin (${PLUGIN_PACKAGE} in conftest.py) nor declares ${DISTRIBUTION}: pytest runs do not wait for each other`,
      fix: `seq-test init --pytest (vendored), or add ${DISTRIBUTION} to your test dependencies (packaged)`,
    });
  }
  for (const { file, args } of addopts) {
    const workers = xdistWorkers(args);
    if (workers === undefined || workers === '0' || workers === '1') continue;
    findings.push({
      severity: 'warning',
      check: 'pytest.workers',
      file,
      message: `${file} addopts runs pytest-xdist with -n ${workers}: every run starts that many worker processes`,
      fix: `remove -n ${workers} from addopts in ${file} (pass -n on the command line when you want it), or cap the run: seq-test run --max-memory 4G -- pytest`,
    });
  }
  return findings;
}
