import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import type { Detection } from './detect.js';
import { splitArgs } from './shell-words.js';
import type { Finding, StepContext, StepOutcome } from './types.js';

export const PYTEST_PACKAGE = '@seq-test/pytest';
export const PLUGIN_MODULE = 'seq_test_plugin';

/** The contract of @seq-test/pytest that init relies on. */
type WritePytestFiles = (targetDir: string, options: { force?: boolean; dryRun?: boolean }) => unknown;

/** Files writePytestFiles may read or write in the target directory; copied into a scratch dir to plan. */
const PYTEST_FILES = ['conftest.py', 'seq_test_plugin.py', 'seq_subprocess.py', 'seq_test_lock.py'];
const PYTEST_CONTEXT = ['pytest.ini', 'pyproject.toml', 'setup.cfg', 'tox.ini'];

async function loadWriter(): Promise<WritePytestFiles | string> {
  const specifier = PYTEST_PACKAGE;
  try {
    const mod = (await import(specifier)) as { writePytestFiles?: unknown; default?: { writePytestFiles?: unknown } };
    const fn = mod.writePytestFiles ?? mod.default?.writePytestFiles;
    if (typeof fn !== 'function') return `${PYTEST_PACKAGE} does not export writePytestFiles()`;
    return fn as WritePytestFiles;
  } catch (error) {
    return `${PYTEST_PACKAGE} cannot be loaded (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); install it next to seq-test`;
  }
}

interface WriteResultLike {
  changes: { path: string; action: string; content?: string; reason?: string }[];
  manual?: string[];
}

function isWriteResult(value: unknown): value is WriteResultLike {
  return typeof value === 'object' && value !== null && Array.isArray((value as WriteResultLike).changes);
}

/**
 * Plans the pytest plugin files with writePytestFiles() from @seq-test/pytest, the single source of what they
 * contain: its dry run says what it would write (with the content), which init then shows as a diff, composes
 * with the other steps and writes with the same backups. Files it would not touch (hand-edited, or a
 * conftest.py it cannot edit) come back as messages.
 */
export async function planPytest(ctx: StepContext, _detection: Detection): Promise<StepOutcome> {
  const outcome: StepOutcome = { id: 'pytest', status: 'changed', messages: [], snippets: [] };
  const writer = await loadWriter();
  if (typeof writer === 'string') {
    return {
      ...outcome,
      status: 'manual',
      messages: [writer],
      snippets: [
        {
          title: 'conftest.py (after installing the seq-test pytest files)',
          text: `pytest_plugins = ["${PLUGIN_MODULE}"]`,
        },
      ],
    };
  }
  let result: unknown;
  try {
    result = await writer(ctx.root, { force: ctx.force, dryRun: true });
  } catch (error) {
    return { ...outcome, status: 'manual', messages: [`pytest files: ${(error as Error).message}`] };
  }
  if (!isWriteResult(result)) return planInScratch(ctx, writer, outcome);
  let changed = 0;
  let manual = 0;
  for (const change of result.changes) {
    const path = isAbsolute(change.path) ? change.path : join(ctx.root, change.path);
    const name = relative(ctx.root, path);
    if (change.action === 'unchanged') continue;
    if (change.content !== undefined && ['create', 'upgrade', 'overwrite', 'edit'].includes(change.action)) {
      ctx.overlay.write(path, change.content, 'pytest');
      outcome.messages.push(`${change.action} ${name}${change.reason ? ` (${change.reason})` : ''}`);
      changed++;
    } else {
      manual++;
      outcome.messages.push(`${name}: ${change.reason ?? change.action}`);
    }
  }
  if (manual > 0) outcome.status = 'manual';
  else if (changed === 0) {
    outcome.status = 'done';
    outcome.messages.push(`the pytest plugin is installed (conftest.py loads ${PLUGIN_MODULE})`);
  }
  return outcome;
}

/** For a writePytestFiles() without a usable dry run: run it on a scratch copy of the files it touches. */
async function planInScratch(ctx: StepContext, writer: WritePytestFiles, outcome: StepOutcome): Promise<StepOutcome> {
  const scratch = mkdtempSync(join(tmpdir(), 'seq-test-init-'));
  try {
    const copied = new Map<string, string>();
    for (const name of [...PYTEST_FILES, ...PYTEST_CONTEXT]) {
      const content = ctx.overlay.read(join(ctx.root, name));
      if (content === null) continue;
      writeFileSync(join(scratch, name), content);
      copied.set(name, content);
    }
    try {
      await writer(scratch, { force: ctx.force, dryRun: false });
    } catch (error) {
      return { ...outcome, status: 'manual', messages: [`pytest files: ${(error as Error).message}`] };
    }
    let changed = 0;
    for (const file of listFiles(scratch)) {
      const name = relative(scratch, file);
      const content = readFileSync(file, 'utf8');
      if (copied.get(name) === content) continue;
      const mode = statSync(file).mode & 0o777;
      ctx.overlay.write(join(ctx.root, name), content, 'pytest', mode & 0o111 ? mode : undefined);
      outcome.messages.push(`${copied.has(name) ? 'update' : 'create'} ${name}`);
      changed++;
    }
    if (changed === 0) {
      outcome.status = 'done';
      outcome.messages.push(`the pytest plugin is installed (conftest.py loads ${PLUGIN_MODULE})`);
    }
    return outcome;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== '__pycache__') out.push(...listFiles(path));
    } else if (entry.isFile()) out.push(path);
  }
  return out;
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

/** Whether pytest loads the seq-test plugin: `pytest_plugins` in the root conftest.py, or `-p seq_test_plugin`. */
export function pytestIntegrated(root: string, addopts: { args: string[] }[]): boolean {
  if (
    addopts.some(({ args }) =>
      args.some((a, i) => (a === '-p' && args[i + 1] === PLUGIN_MODULE) || a === `-p${PLUGIN_MODULE}`),
    )
  ) {
    return true;
  }
  let conftest = '';
  try {
    conftest = readFileSync(join(root, 'conftest.py'), 'utf8');
  } catch {
    return false;
  }
  return /\bpytest_plugins\b/.test(conftest) && new RegExp(`["']${PLUGIN_MODULE}["']`).test(conftest);
}

export function auditPytest(root: string, detection: Detection): Finding[] {
  if (!detection.pytest.used) return [];
  const findings: Finding[] = [];
  const addopts = pytestAddopts(root, detection);
  if (!pytestIntegrated(root, addopts)) {
    findings.push({
      severity: 'error',
      check: 'pytest.integration',
      file: 'conftest.py',
      message: `pytest is used (${detection.pytest.reasons.join(', ')}) but conftest.py does not load ${PLUGIN_MODULE}: pytest runs do not wait for each other`,
      fix: 'seq-test init --pytest',
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
