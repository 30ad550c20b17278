import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Writes (and upgrades) the pytest bridge into a project: one small directory, seq_test_pytest/, next to the
 * root conftest.py (three stdlib-only Python modules and an __init__.py that puts them on sys.path and loads
 * the plugin), and one `pytest_plugins` entry in that conftest.py. Used by `seq-test init --pytest`.
 * The Python sources live in integrations/pytest/templates (the seq-test-pytest wheel is built from the same
 * files); the CLI's build copies them into its dist/pytest/, so the published CLI carries them.
 *
 * Rules (integrations/pytest/README.md, "Updating"):
 * - Each generated module starts with `# seq-test-generated: version=N sha256=<hash of the rest>`.
 * - Missing: created. Intact (hash matches) and older or different: upgraded in place. Same: left alone.
 * - Edited by hand (hash mismatch), not ours (no header), or written by a newer version: left alone unless
 *   `force`.
 * - conftest.py is the user's: created when absent, otherwise only the plugin's name is added to it (an
 *   appended line, or an entry in a simple `pytest_plugins = [...]` list); anything else is reported as a
 *   manual edit, with the exact line to add.
 */

/**
 * Version written into the header of every generated module. Bump it (here and TEMPLATE_VERSION in the
 * templates) whenever a release ships changed templates: it is how init knows a vendored copy is older (an
 * upgrade) or newer (left alone: no downgrade), and how doctor names a stale copy (`pytest.vendored`).
 * 1: the first vendored modules; 2: protocol version 2 (memory-aware admission), the history lock, the
 * hardened queue reads (issues 13, 16, 17).
 */
export const TEMPLATE_VERSION = 2;
/** The directory (a Python package) the vendored plugin lives in, next to the root conftest.py. */
export const PLUGIN_DIR = 'seq_test_pytest';
/** The generated files (in PLUGIN_DIR): the three modules and the package's __init__.py. */
export const GENERATED_FILES: readonly string[] = [
  'seq_test_lock.py',
  'seq_subprocess.py',
  'seq_test_plugin.py',
  '__init__.py',
];
/** What conftest.py loads: the vendored package, which loads the plugin module. */
export const PLUGIN_PACKAGE = PLUGIN_DIR;
/** The plugin module itself: the name the packaged distribution registers (its pytest11 entry point). */
export const PLUGIN_MODULE = 'seq_test_plugin';
/** The Python distribution of the same plugin (integrations/pytest/pyproject.toml). */
export const DISTRIBUTION = 'seq-test-pytest';
/** The line added to (or written in) the root conftest.py. */
export const PLUGIN_LINE = `pytest_plugins = ["${PLUGIN_PACKAGE}"]`;

/**
 * Where the Python sources are: dist/pytest/ next to the bundled CLI (copied there by tsup.config.ts), or,
 * when this module runs from source (tests), integrations/pytest/templates itself.
 */
export const PYTHON_SOURCE_DIR = [
  new URL('./pytest/', import.meta.url),
  new URL('../../../../integrations/pytest/templates/', import.meta.url),
]
  .map((url) => fileURLToPath(url))
  .find((dir) => existsSync(join(dir, `${PLUGIN_MODULE}.py`)));

export type FileAction =
  /** The file did not exist and is (or would be, in a dry run) written. */
  | 'create'
  /** An intact generated file of another version or content, replaced in place. */
  | 'upgrade'
  /** A hand-edited, foreign or newer file replaced because `force` was given. */
  | 'overwrite'
  /** conftest.py: the plugin was added to it. */
  | 'edit'
  /** Already up to date. */
  | 'unchanged'
  /** Left alone: hand-edited, foreign, or newer; see `reason`. */
  | 'skip'
  /** conftest.py: the user must add the plugin; `reason` holds the exact edit. */
  | 'manual';

export interface FilePlan {
  action: FileAction;
  /** The new content, when the file is (or would be) written. */
  content?: string;
  /** Why a file was skipped, overwritten, or needs a manual edit. */
  reason?: string;
  /** For 'upgrade': the version found in the old header. */
  from?: number | undefined;
}

export interface FileChange extends FilePlan {
  path: string;
}

export interface WriteResult {
  dir: string;
  dryRun: boolean;
  version: number;
  /** One entry per generated module, then one for conftest.py. */
  changes: FileChange[];
  /** Reasons of every 'skip' and 'manual' change: what the user still has to do. */
  manual: string[];
  /** True when nothing is left to the user. */
  complete: boolean;
}

export interface WriteOptions {
  /** Overwrite generated files that were edited by hand, carry no header, or come from a newer version. */
  force?: boolean | undefined;
  /** Plan only: write nothing, report what would change (with the content). */
  dryRun?: boolean | undefined;
}

const HEADER = /^# seq-test-generated: version=(\d+) sha256=([0-9a-f]{64})[^\n]*\n/;
// Part of every generated file: changing it makes every vendored copy an 'upgrade'.
const HEADER_NOTE = '(generated by `seq-test init --pytest`; edits stop upgrades: see @seq-test/pytest README)';

const CONFTEST_CREATED = `# Root conftest.py, created by \`seq-test init --pytest\`; it is yours to edit.
# The line below loads seq_test_pytest/ (next to this file): sequential runs, the project's seq-test lock,
# leftover processes reaped. Remove it to stop using seq-test.
${PLUGIN_LINE}
`;

/** seq_test_pytest/__init__.py: the modules import each other by their top-level names, as when installed. */
const PACKAGE_INIT = `"""seq-test's pytest plugin, vendored by \`seq-test init --pytest\` (or: pip install ${DISTRIBUTION})."""
import os as _os
import sys as _sys

_here = _os.path.dirname(_os.path.abspath(__file__))
if _here not in _sys.path:
    _sys.path.insert(0, _here)

# Already registered when the ${DISTRIBUTION} distribution is installed too: pytest then skips this.
pytest_plugins = ["${PLUGIN_MODULE}"]
`;

function sha256(text: string): string {
  return createHash('sha256').update(text.replace(/\r\n/g, '\n'), 'utf8').digest('hex');
}

function templateBody(name: string): string {
  if (name === '__init__.py') return PACKAGE_INIT;
  if (PYTHON_SOURCE_DIR === undefined)
    throw new Error('the pytest plugin sources are missing from this seq-test (dist/pytest/): reinstall seq-test');
  return readFileSync(join(PYTHON_SOURCE_DIR, name), 'utf8');
}

/** The full text of one generated module: header line, then the template. */
export function renderFile(name: string): string {
  if (!GENERATED_FILES.includes(name))
    throw new Error(`unknown template ${name}; expected one of ${GENERATED_FILES.join(', ')}`);
  const body = templateBody(name);
  return `# seq-test-generated: version=${TEMPLATE_VERSION} sha256=${sha256(body)} ${HEADER_NOTE}\n${body}`;
}

/** The header of a generated file, or undefined; `intact` tells whether the body still matches its hash. */
export function readHeader(text: string): { version: number; sha256: string; intact: boolean } | undefined {
  const match = HEADER.exec(text);
  if (!match) return undefined;
  const body = text.slice(match[0].length);
  return { version: Number(match[1]), sha256: match[2] as string, intact: sha256(body) === match[2] };
}

/** What to do with one generated module, given its current text (undefined when absent). */
export function planGenerated(name: string, current: string | undefined, force = false): FilePlan {
  const content = renderFile(name);
  if (current === undefined) return { action: 'create', content };
  if (current.replace(/\r\n/g, '\n') === content) return { action: 'unchanged' };
  const header = readHeader(current);
  let problem: string | undefined;
  if (!header) problem = 'it has no seq-test header (not written by seq-test, or its first line was edited)';
  else if (!header.intact) problem = 'it was edited by hand (its content no longer matches its sha256)';
  else if (header.version > TEMPLATE_VERSION)
    problem = `it was written by a newer seq-test (version ${header.version}; this is ${TEMPLATE_VERSION})`;
  if (problem === undefined) {
    const from = header?.version;
    const reason =
      from === TEMPLATE_VERSION
        ? `another build of template version ${from}`
        : `from template version ${from} to ${TEMPLATE_VERSION}`;
    return { action: 'upgrade', content, from, reason };
  }
  if (force) return { action: 'overwrite', content, reason: `${problem}; overwritten (force)` };
  return { action: 'skip', reason: `${problem}; left alone (use force to overwrite)` };
}

/** What to do with the root conftest.py, given its current text (undefined when absent). */
export function planConftest(current: string | undefined, path = 'conftest.py'): FilePlan {
  if (current === undefined) return { action: 'create', content: CONFTEST_CREATED };
  const code = current
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .join('\n');
  // The vendored package, or the plugin module (the layout before seq_test_pytest/, or the installed one).
  if (new RegExp(`["'](${PLUGIN_PACKAGE}|${PLUGIN_MODULE})["']`).test(code)) return { action: 'unchanged' };
  const assignments = [...current.matchAll(/^pytest_plugins[ \t]*(?::[^=\n]*)?(\+?=)[ \t]*/gm)];
  if (assignments.length === 0) {
    const sep = current === '' || current.endsWith('\n') ? '' : '\n';
    return {
      action: 'edit',
      content: `${current}${sep}\n${PLUGIN_LINE}  # seq-test: sequential runs, the project's lock, leftovers reaped\n`,
      reason: `added the line ${PLUGIN_LINE}`,
    };
  }
  const first = assignments[0] as RegExpExecArray;
  if (assignments.length === 1 && first[1] === '=') {
    const edited = addToLiteral(current, first.index + first[0].length);
    if (edited !== undefined) {
      return { action: 'edit', content: edited, reason: `added "${PLUGIN_PACKAGE}" to its pytest_plugins` };
    }
  }
  const last = assignments[assignments.length - 1] as RegExpExecArray;
  const valueStart = current.slice(last.index + last[0].length);
  const line = /^["']/.test(valueStart)
    ? `pytest_plugins = pytest_plugins.split(",") + ["${PLUGIN_PACKAGE}"]`
    : `pytest_plugins = [*pytest_plugins, "${PLUGIN_PACKAGE}"]`;
  return {
    action: 'manual',
    reason: `${path} sets pytest_plugins in a way seq-test does not edit automatically; add "${PLUGIN_PACKAGE}" to it yourself, e.g. append this line at the end of ${path}:\n    ${line}`,
  };
}

/**
 * Inserts the plugin into the list or tuple literal that starts at `at` (right after `pytest_plugins =`).
 * Handles one-line literals and multi-line ones whose closing bracket sits on its own line after a trailing
 * comma; returns undefined for anything else.
 */
function addToLiteral(text: string, at: number): string | undefined {
  const open = text[at];
  if (open !== '[' && open !== '(') return undefined;
  const closeChar = open === '[' ? ']' : ')';
  let depth = 0;
  let close = -1;
  for (let i = at; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '"' || c === "'") {
      if (text.startsWith(c.repeat(3), i)) return undefined;
      const end = text.indexOf(c, i + 1);
      if (end === -1 || text.slice(i, end).includes('\n')) return undefined;
      i = end;
    } else if (c === '#') {
      const end = text.indexOf('\n', i);
      if (end === -1) return undefined;
      i = end;
    } else if (c === '[' || c === '(' || c === '{') depth++;
    else if (c === ']' || c === ')' || c === '}') {
      depth--;
      if (depth === 0) {
        if (c !== closeChar) return undefined;
        close = i;
        break;
      }
    }
  }
  if (close === -1) return undefined;
  const inner = text.slice(at + 1, close);
  const entry = `"${PLUGIN_PACKAGE}"`;
  if (!inner.includes('\n')) {
    if (inner.includes('#')) return undefined;
    const trimmed = inner.trim();
    const replacement =
      trimmed === ''
        ? open === '('
          ? `${entry},`
          : entry
        : trimmed.endsWith(',')
          ? `${inner.trimEnd()} ${entry}`
          : `${inner.trimEnd()}, ${entry}`;
    return text.slice(0, at + 1) + replacement + text.slice(close);
  }
  const lastBreak = inner.lastIndexOf('\n');
  if (inner.slice(lastBreak + 1).trim() !== '') return undefined; // closing bracket not on its own line
  const lines = inner.slice(0, lastBreak).split('\n');
  const lastIndex = lines.findLastIndex((l) => l.replace(/#.*$/, '').trim() !== '');
  if (lastIndex === -1) {
    const indent = '    ';
    return `${text.slice(0, at + 1 + lastBreak)}\n${indent}${entry},${text.slice(at + 1 + lastBreak)}`;
  }
  const lastLine = lines[lastIndex] as string;
  if (!lastLine.replace(/#.*$/, '').trimEnd().endsWith(',')) return undefined;
  const indent = /^[ \t]*/.exec(lastLine)?.[0] ?? '    ';
  lines.splice(lastIndex + 1, 0, `${indent}${entry},`);
  return text.slice(0, at + 1) + lines.join('\n') + inner.slice(lastBreak) + text.slice(close);
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function writeAtomic(path: string, content: string): void {
  const temp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  let mode = 0o644;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {}
  writeFileSync(temp, content, { mode, flag: 'wx' });
  try {
    renameSync(temp, path);
  } catch (error) {
    try {
      unlinkSync(temp);
    } catch {}
    throw error;
  }
}

/** Whether `dir` has the generated plugin module at its top (the layout before seq_test_pytest/): kept there. */
export function isLegacyLayout(dir: string): boolean {
  const text = readIfExists(join(dir, `${PLUGIN_MODULE}.py`));
  return text !== undefined && readHeader(text) !== undefined && !existsSync(join(dir, PLUGIN_DIR));
}

/** The generated modules of the vendored plugin in `dir` (either layout) and where each one is. */
function vendoredPaths(dir: string): { name: string; path: string }[] {
  const legacy = isLegacyLayout(dir);
  // A project set up before seq_test_pytest/ keeps its modules next to conftest.py: upgraded where they are.
  return (legacy ? GENERATED_FILES.filter((n) => n !== '__init__.py') : GENERATED_FILES).map((name) => ({
    name,
    path: legacy ? join(dir, name) : join(dir, PLUGIN_DIR, name),
  }));
}

/** A vendored module that is not what this seq-test writes (doctor's `pytest.vendored`). */
export interface VendoredDrift {
  path: string;
  /**
   * older: intact, from an older template version (init upgrades it); other: intact, this version but
   * another build (init upgrades it); newer: from a newer seq-test (init leaves it alone); edited: changed by
   * hand; foreign: no seq-test header; missing: not there.
   */
  state: 'older' | 'other' | 'newer' | 'edited' | 'foreign' | 'missing';
  /** What its header says, when it has one. */
  version?: number | undefined;
}

/**
 * How the vendored plugin in `targetDir` (where init put it: seq_test_pytest/ next to the root conftest.py,
 * or the older top-level modules) differs from what this seq-test writes; empty when it is current or when
 * there is no vendored plugin.
 */
export function vendoredDrift(targetDir: string): VendoredDrift[] {
  const dir = resolve(targetDir);
  if (!isLegacyLayout(dir) && !existsSync(join(dir, PLUGIN_DIR))) return [];
  const drift: VendoredDrift[] = [];
  for (const { name, path } of vendoredPaths(dir)) {
    const current = readIfExists(path);
    const plan = planGenerated(name, current);
    if (plan.action === 'unchanged') continue;
    const header = current === undefined ? undefined : readHeader(current);
    const version = header?.version;
    let state: VendoredDrift['state'];
    if (current === undefined) state = 'missing';
    else if (!header) state = 'foreign';
    else if (!header.intact) state = 'edited';
    else if (header.version > TEMPLATE_VERSION) state = 'newer';
    else state = header.version < TEMPLATE_VERSION ? 'older' : 'other';
    drift.push({ path, state, version });
  }
  return drift;
}

/**
 * Writes or upgrades the pytest bridge in `targetDir`, pytest's rootdir (where pytest.ini, pyproject.toml,
 * setup.cfg or tox.ini is, and the root conftest.py is or will be). Never overwrites conftest.py: only the
 * plugin's name is added to it. Throws when `targetDir` is not a directory.
 */
export function writePytestFiles(targetDir: string, options: WriteOptions = {}): WriteResult {
  const force = Boolean(options.force);
  const dryRun = Boolean(options.dryRun);
  const dir = resolve(targetDir);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new Error(`writePytestFiles: ${dir} is not a directory`);
  }
  const changes: FileChange[] = [];
  for (const { name, path } of vendoredPaths(dir)) {
    changes.push({ path, ...planGenerated(name, readIfExists(path), force) });
  }
  const conftest = join(dir, 'conftest.py');
  changes.push({ path: conftest, ...planConftest(readIfExists(conftest), conftest) });
  if (!dryRun) {
    for (const change of changes) {
      if (change.content !== undefined && change.action !== 'unchanged') {
        mkdirSync(dirname(change.path), { recursive: true });
        writeAtomic(change.path, change.content);
      }
    }
  }
  const manual = changes.filter((c) => c.action === 'manual' || c.action === 'skip').map((c) => c.reason ?? c.action);
  return { dir, dryRun, version: TEMPLATE_VERSION, changes, manual, complete: manual.length === 0 };
}
