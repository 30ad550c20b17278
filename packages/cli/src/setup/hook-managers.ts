import { join } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Detection } from './detect.js';
import { readText } from './detect.js';
import { parseJsonFile, setJsonValue } from './json-edit.js';
import type { Finding, StepContext, StepOutcome } from './types.js';
import { applyEdits, replaceScalar, type TextEdit } from './yaml-edit.js';

/**
 * Hook managers that generate .git/hooks from a config of their own (simple-git-hooks, lefthook). Their
 * generated hooks are rewritten on every install, so init edits the config, the manager's source of truth:
 * each pre-commit/pre-push command is put under `seq-test run`, and the user re-installs the hooks.
 */
export type ConfigManager =
  | { kind: 'simple-git-hooks'; config: string; jsonKey?: string }
  | { kind: 'lefthook'; config: string };

/** Hooks whose commands are queued. */
const QUEUED_HOOKS = ['pre-commit', 'pre-push'];
const SIMPLE_GIT_HOOKS_FILES = ['.simple-git-hooks.json', 'simple-git-hooks.json'];
const SIMPLE_GIT_HOOKS_JS = ['.simple-git-hooks.cjs', '.simple-git-hooks.js', '.simple-git-hooks.mjs'].flatMap((f) => [
  f,
  f.slice(1),
]);
const LEFTHOOK_FILES = ['lefthook.yml', '.lefthook.yml', 'lefthook.yaml', '.lefthook.yaml', '.config/lefthook.yml'];
const LEFTHOOK_OTHER = ['lefthook.toml', '.lefthook.toml', 'lefthook.json', '.lefthook.json'];
const QUEUED = /\bseq-test\s+run\b/;

/** The config-driven hook manager of the repository, found by its config file (or package.json key). */
export function detectConfigManager(root: string, pkg: Record<string, unknown> | undefined): ConfigManager | undefined {
  const lefthook = LEFTHOOK_FILES.find((f) => readText(join(root, f)) !== undefined);
  if (lefthook) return { kind: 'lefthook', config: lefthook };
  const lefthookOther = LEFTHOOK_OTHER.find((f) => readText(join(root, f)) !== undefined);
  if (lefthookOther) return { kind: 'lefthook', config: lefthookOther };
  if (pkg && typeof pkg['simple-git-hooks'] === 'object' && pkg['simple-git-hooks'] !== null) {
    return { kind: 'simple-git-hooks', config: 'package.json', jsonKey: 'simple-git-hooks' };
  }
  const file = [...SIMPLE_GIT_HOOKS_FILES, ...SIMPLE_GIT_HOOKS_JS].find((f) => readText(join(root, f)) !== undefined);
  if (file) return { kind: 'simple-git-hooks', config: file };
  return undefined;
}

/** A shell command line run under `seq-test run`: plain commands directly, anything else through `sh -c`. */
export function queuedCommand(command: string, seqTest: string): string {
  const trimmed = command.trim();
  if (/^[\w@%+=:,./-]+(\s+[\w@%+=:,./{}-]+)*$/.test(trimmed)) return `${seqTest} run -- ${trimmed}`;
  if (!trimmed.includes("'")) return `${seqTest} run -- sh -c '${trimmed}'`;
  if (!/[$`"\\]/.test(trimmed)) return `${seqTest} run -- sh -c "${trimmed}"`;
  return `${seqTest} run -- sh -c '${trimmed.replace(/'/g, `'\\''`)}'`;
}

export function seqTestCommand(detection: Detection): string {
  // Hooks run in a plain shell: node_modules/.bin is not on PATH there, npx finds the devDependency.
  return detection.packageJson ? 'npx seq-test' : 'seq-test';
}

const INSTALL: Record<ConfigManager['kind'], string> = {
  'simple-git-hooks': 'npx simple-git-hooks',
  lefthook: 'npx lefthook install',
};

interface Command {
  hook: string;
  name: string;
  command: string;
  /** Where the command is in the config text (edits are made from the last one up). */
  at: number;
  /** Replaces the command in the config text; undefined when it cannot be edited in place. */
  edit?: (text: string, next: string) => string;
}

function simpleGitHooksCommands(text: string, manager: ConfigManager & { kind: 'simple-git-hooks' }): Command[] {
  const data = parseJsonFile(text, manager.config) as Record<string, unknown>;
  const hooks = (manager.jsonKey ? data[manager.jsonKey] : data) as Record<string, unknown> | undefined;
  const out: Command[] = [];
  for (const hook of QUEUED_HOOKS) {
    const command = hooks?.[hook];
    if (typeof command !== 'string') continue;
    const path = manager.jsonKey ? [manager.jsonKey, hook] : [hook];
    out.push({ hook, name: hook, command, at: 0, edit: (t, next) => setJsonValue(t, path, next) });
  }
  return out;
}

function lefthookCommands(text: string): Command[] {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new Error(doc.errors[0]?.message ?? 'YAML error');
  const out: Command[] = [];
  const scalarEdit = (node: unknown) => {
    if (!replaceScalar(node, '')) return undefined;
    return (t: string, next: string) => applyEdits(t, [replaceScalar(node, next) as TextEdit]);
  };
  for (const hook of QUEUED_HOOKS) {
    const section = isMap(doc.contents) ? doc.contents.get(hook, true) : undefined;
    if (!isMap(section)) continue;
    const commands = section.get('commands', true);
    if (isMap(commands)) {
      for (const pair of commands.items) {
        const value = pair.value;
        if (!isMap(value)) continue;
        const run = value.get('run', true);
        const command = isScalar(run) ? String(run.value) : undefined;
        if (command === undefined) continue;
        const edit = scalarEdit(run);
        out.push({
          hook,
          name: String(isScalar(pair.key) ? pair.key.value : pair.key),
          command,
          at: run?.range?.[0] ?? 0,
          ...(edit ? { edit } : {}),
        });
      }
    }
    const jobs = section.get('jobs', true);
    if (isSeq(jobs)) {
      jobs.items.forEach((job, index) => {
        if (!isMap(job)) return;
        const run = job.get('run', true);
        if (!isScalar(run)) return;
        const edit = scalarEdit(run);
        const name = job.get('name');
        out.push({
          hook,
          name: typeof name === 'string' ? name : `job ${index + 1}`,
          command: String(run.value),
          at: run.range?.[0] ?? 0,
          ...(edit ? { edit } : {}),
        });
      });
    }
    const scripts = section.get('scripts', true);
    if (isMap(scripts)) {
      for (const pair of scripts.items) {
        const name = String(isScalar(pair.key) ? pair.key.value : pair.key);
        out.push({ hook, name: `script ${name}`, command: `.lefthook/${hook}/${name}`, at: 0 });
      }
    }
  }
  return out;
}

function commandsOf(manager: ConfigManager, text: string): Command[] {
  return manager.kind === 'lefthook' ? lefthookCommands(text) : simpleGitHooksCommands(text, manager);
}

/** `seq-test init --git-hook` for a config-driven manager: its commands under seq-test run, in its config. */
export function planManagedHooks(ctx: StepContext, detection: Detection, manager: ConfigManager): StepOutcome {
  const outcome: StepOutcome = { id: 'git-hook', status: 'done', messages: [], snippets: [] };
  const path = join(ctx.root, manager.config);
  const original = ctx.overlay.read(path);
  const manual = (why: string): StepOutcome => ({
    ...outcome,
    status: 'manual',
    messages: [
      `${manager.kind}: cannot edit ${manager.config} safely (${why}); put each pre-commit/pre-push command under seq-test run by hand, then run ${INSTALL[manager.kind]}`,
    ],
    snippets: [
      {
        title: manager.config,
        text: `${QUEUED_HOOKS[0]}: ${queuedCommand('<your command>', seqTestCommand(detection))}`,
      },
    ],
  });
  if (original === null) return manual('it cannot be read');
  if (!/\.(json|ya?ml)$/.test(manager.config)) return manual('only JSON and YAML configs are edited');
  let commands: Command[];
  try {
    commands = commandsOf(manager, original);
  } catch (error) {
    return manual((error as Error).message);
  }
  if (commands.length === 0) {
    return {
      ...outcome,
      status: 'skipped',
      messages: [`${manager.kind}: ${manager.config} has no pre-commit or pre-push command to queue`],
    };
  }
  let text = original;
  const seqTest = seqTestCommand(detection);
  // Edit from the last command to the first, so that earlier positions stay valid.
  for (const command of [...commands].sort((a, b) => b.at - a.at)) {
    if (QUEUED.test(command.command)) {
      outcome.messages.push(`${manager.config}: ${command.hook} ${command.name} already runs under seq-test`);
      continue;
    }
    if (!command.edit) {
      outcome.status = 'manual';
      outcome.messages.push(
        `${manager.config}: ${command.hook} ${command.name} cannot be edited in place: run it as ${queuedCommand(command.command, seqTest)}`,
      );
      continue;
    }
    text = command.edit(text, queuedCommand(command.command, seqTest));
    outcome.messages.push(`${manager.config}: run ${command.hook} ${command.name} under seq-test run`);
  }
  if (text !== original) {
    // Our own work must read back as the same commands, each queued.
    const after = commandsOf(manager, text);
    if (after.length !== commands.length || after.some((c) => c.edit && !QUEUED.test(c.command))) {
      return manual('the edit did not verify');
    }
    ctx.overlay.write(path, text, 'git-hook');
    if (outcome.status !== 'manual') outcome.status = 'changed';
    outcome.messages.push(`then run ${INSTALL[manager.kind]} to regenerate the hooks in .git/hooks from it`);
  }
  return outcome;
}

/** doctor: every pre-commit/pre-push command of the manager's config runs under seq-test, and is installed. */
export function auditManagedHooks(detection: Detection, manager: ConfigManager): Finding[] {
  const text = readText(join(detection.root, manager.config));
  if (text === undefined || !/\.(json|ya?ml)$/.test(manager.config)) {
    return [
      {
        severity: 'info',
        check: 'git-hook.manager',
        file: manager.config,
        message: `${manager.kind} hooks are configured in ${manager.config}, which doctor does not read: check that its pre-commit and pre-push commands run under seq-test run`,
      },
    ];
  }
  let commands: Command[];
  try {
    commands = commandsOf(manager, text);
  } catch (error) {
    return [
      {
        severity: 'warning',
        check: 'git-hook.parse',
        file: manager.config,
        message: `${manager.config} does not parse: ${(error as Error).message}`,
      },
    ];
  }
  const findings: Finding[] = [];
  for (const command of commands) {
    if (QUEUED.test(command.command)) continue;
    findings.push({
      severity: 'error',
      check: 'git-hook.bypass',
      file: manager.config,
      message: `${manager.kind} ${command.hook} ${command.name} (\`${command.command}\`) runs without seq-test: hooks of commits made at the same time run at the same time`,
      fix: 'seq-test init --git-hook',
    });
  }
  // The generated hook is what git runs: after editing the config it must be installed again.
  const hooksDir = detection.hooks?.hooksDir;
  for (const hook of new Set(commands.filter((c) => QUEUED.test(c.command)).map((c) => c.hook))) {
    const installed = hooksDir ? readText(join(hooksDir, hook)) : undefined;
    if (installed === undefined) {
      findings.push({
        severity: 'warning',
        check: 'git-hook.not-installed',
        file: manager.config,
        message: `${manager.config} defines a ${hook} hook, but git has none installed: it does not run`,
        fix: INSTALL[manager.kind],
      });
    } else if (manager.kind === 'simple-git-hooks' && !QUEUED.test(installed)) {
      findings.push({
        severity: 'error',
        check: 'git-hook.stale',
        file: manager.config,
        message: `the installed ${hook} hook predates ${manager.config}: it still runs without seq-test`,
        fix: INSTALL[manager.kind],
      });
    }
  }
  return findings;
}
