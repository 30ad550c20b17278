import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { SeqTestError } from './errors.js';
import { parseSignal } from './signals.js';
import { parseSize } from './units.js';

/**
 * Project defaults for `seq-test run`/`exec` and the integrations, kept in the repository so that every
 * developer, hook and CI job of a project uses the same key, slots and limits:
 *
 *   package.json        { "seqTest": { "timeout": 600, "maxMemory": "4G" } }
 *   .seqtestrc.json     { "timeout": 600, "maxMemory": "4G" }
 *
 * The nearest directory, from cwd up to the git top-level (the directory holding `.git`; outside a
 * repository, cwd only), that has either wins; `.seqtestrc.json` before `package.json` in the same
 * directory. Explicit flags and $SEQ_TEST_KEY win over the file. Unknown keys are errors, so that a typo
 * ("timout") does not silently do nothing.
 */
export interface ProjectConfig {
  /** Lock key shared by everything that runs in this project (`--key`). */
  key?: string;
  /** How many runs may hold the lock at once (`--slots`), a whole number ≥ 1, or "auto" (memory-aware). */
  slots?: number | 'auto';
  /** With `"slots": "auto"`: at most this many holders (`--max-slots`). */
  maxSlots?: number;
  /** With `"slots": "auto"`: `--memory-budget` in bytes. */
  memoryBudgetBytes?: number;
  /** `--timeout` in milliseconds; 0 means none. */
  timeoutMs?: number;
  /** `--grace` in milliseconds. */
  graceMs?: number;
  /** `--linger` in milliseconds. */
  lingerMs?: number;
  /** `--max-memory` in bytes. */
  maxMemoryBytes?: number;
  /** `--kill-signal`, normalized to its name (SIGTERM). */
  killSignal?: NodeJS.Signals;
}

export interface LoadedProjectConfig {
  /** The file the settings came from (absolute). */
  file: string;
  /** `package.json` or `.seqtestrc.json`. */
  kind: 'package.json' | '.seqtestrc.json';
  config: ProjectConfig;
  /** The settings as written in the file. */
  raw: Record<string, unknown>;
}

export const PROJECT_CONFIG_KEYS = [
  'key',
  'slots',
  'maxSlots',
  'memoryBudget',
  'timeout',
  'grace',
  'linger',
  'maxMemory',
  'killSignal',
] as const;
export const RC_FILE = '.seqtestrc.json';
export const PACKAGE_JSON_FIELD = 'seqTest';

/**
 * Checks settings as written in a file and converts them (seconds to ms, sizes to bytes, signal names).
 * `where` names the file and field prefix for the message, e.g. `package.json "seqTest.slots" must be …`.
 */
export function validateProjectConfig(value: unknown, where: { file: string; prefix?: string }): ProjectConfig {
  const prefix = where.prefix ?? '';
  const field = (name: string) => `${where.file} "${prefix}${name}"`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SeqTestError(
      `${where.file} ${prefix ? `"${prefix.replace(/\.$/, '')}" ` : ''}must be a JSON object, got ${describe(value)}`,
    );
  }
  const input = value as Record<string, unknown>;
  const config: ProjectConfig = {};
  for (const name of Object.keys(input)) {
    if (name === '$schema') continue;
    if (!(PROJECT_CONFIG_KEYS as readonly string[]).includes(name)) {
      throw new SeqTestError(`${field(name)} is not a seq-test setting (known: ${PROJECT_CONFIG_KEYS.join(', ')})`);
    }
  }
  if (input.key !== undefined) {
    if (typeof input.key !== 'string' || input.key.trim() === '') {
      throw new SeqTestError(`${field('key')} must be a non-empty string, got ${describe(input.key)}`);
    }
    config.key = input.key;
  }
  if (input.slots !== undefined) {
    const slots = input.slots === 'auto' ? 'auto' : wholeNumber(input.slots);
    if (slots === undefined || (slots !== 'auto' && slots < 1)) {
      throw new SeqTestError(`${field('slots')} must be a whole number ≥ 1 or "auto", got ${describe(input.slots)}`);
    }
    config.slots = slots;
  }
  if (input.maxSlots !== undefined) {
    const maxSlots = wholeNumber(input.maxSlots);
    if (maxSlots === undefined || maxSlots < 1) {
      throw new SeqTestError(`${field('maxSlots')} must be a whole number ≥ 1, got ${describe(input.maxSlots)}`);
    }
    config.maxSlots = maxSlots;
  }
  if (input.memoryBudget !== undefined) config.memoryBudgetBytes = size(input.memoryBudget, field('memoryBudget'));
  for (const [name, only] of [
    ['maxSlots', config.maxSlots],
    ['memoryBudget', config.memoryBudgetBytes],
  ] as const) {
    if (only !== undefined && config.slots !== 'auto') {
      throw new SeqTestError(`${field(name)} only applies with "slots": "auto"`);
    }
  }
  for (const [name, key] of [
    ['timeout', 'timeoutMs'],
    ['grace', 'graceMs'],
    ['linger', 'lingerMs'],
  ] as const) {
    if (input[name] === undefined) continue;
    const ms = seconds(input[name]);
    if (ms === undefined) {
      throw new SeqTestError(
        `${field(name)} must be a number of seconds ≥ 0 (such as 600 or 0.5), got ${describe(input[name])}`,
      );
    }
    config[key] = ms;
  }
  if (input.maxMemory !== undefined) config.maxMemoryBytes = size(input.maxMemory, field('maxMemory'));
  if (input.killSignal !== undefined) {
    const raw = input.killSignal;
    let name: NodeJS.Signals | undefined;
    if (typeof raw === 'string' || typeof raw === 'number') {
      try {
        name = parseSignal(field('killSignal'), String(raw)).name;
      } catch {}
    }
    if (name === undefined) {
      throw new SeqTestError(`${field('killSignal')} must be a signal name such as "SIGTERM", got ${describe(raw)}`);
    }
    config.killSignal = name;
  }
  return config;
}

/**
 * Finds the settings that apply in `cwd` (see ProjectConfig) and validates them. Returns undefined when no
 * file has any. A file that is not valid JSON, or has bad settings, is an error naming the file and field.
 */
export function loadProjectConfig(cwd: string = process.cwd()): LoadedProjectConfig | undefined {
  let start: string;
  try {
    start = realpathSync(cwd);
  } catch {
    return undefined;
  }
  // Up to the git top-level; outside a repository only cwd itself (never a stray ~/package.json).
  const dirs: string[] = [];
  for (let dir = start; ; dir = dirname(dir)) {
    dirs.push(dir);
    if (existsSync(join(dir, '.git'))) break;
    if (dirname(dir) === dir) {
      dirs.splice(1);
      break;
    }
  }
  for (const dir of dirs) {
    const found = readConfigIn(dir, start);
    if (found) return found;
  }
  return undefined;
}

function readConfigIn(dir: string, cwd: string): LoadedProjectConfig | undefined {
  const rc = join(dir, RC_FILE);
  const display = (file: string) => relative(cwd, file) || file;
  const rcText = readIfExists(rc);
  if (rcText !== undefined) {
    const raw = parseJson(rcText, display(rc));
    return {
      file: rc,
      kind: RC_FILE,
      raw: raw as Record<string, unknown>,
      config: validateProjectConfig(raw, { file: display(rc) }),
    };
  }
  const pkg = join(dir, 'package.json');
  const pkgText = readIfExists(pkg);
  if (pkgText === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(pkgText);
  } catch {
    // A broken package.json is npm's problem to report; it holds no settings of ours.
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || !(PACKAGE_JSON_FIELD in parsed)) return undefined;
  const raw = (parsed as Record<string, unknown>)[PACKAGE_JSON_FIELD];
  return {
    file: pkg,
    kind: 'package.json',
    raw: raw as Record<string, unknown>,
    config: validateProjectConfig(raw, { file: display(pkg), prefix: `${PACKAGE_JSON_FIELD}.` }),
  };
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SeqTestError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
}

/** A size such as "512M" or "2G", or a number of bytes. */
function size(raw: unknown, field: string): number {
  let bytes: number | undefined;
  if (typeof raw === 'number') bytes = Number.isSafeInteger(raw) && raw > 0 ? raw : undefined;
  else if (typeof raw === 'string') {
    try {
      bytes = parseSize(field, raw);
    } catch {}
  }
  if (bytes === undefined) {
    throw new SeqTestError(
      `${field} must be a size such as "512M" or "2G" (or a number of bytes), got ${describe(raw)}`,
    );
  }
  return bytes;
}

function wholeNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'string' && /^\s*\d+\s*$/.test(value)) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

function seconds(value: unknown): number | undefined {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^\s*(\d+\.?\d*|\.\d+)\s*$/.test(value)) n = Number(value);
  else return undefined;
  return Number.isFinite(n) && n >= 0 ? Math.round(n * 1000) : undefined;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return String(value);
}
