import { existsSync, readlinkSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import {
  assertSafeDir,
  formatBytes,
  formatDuration,
  loadProjectConfig,
  readStatus,
  stateDirPath,
} from '@seq-test/core/internal';
import { auditConfig } from './config-step.js';
import { detect, readText } from './detect.js';
import { isInside, projectRoot } from './git.js';
import { auditGitHooks } from './git-hooks.js';
import { auditHelper, type HelperReport, renderHelper } from './helper.js';
import { auditJest } from './jest.js';
import { auditPreCommit } from './pre-commit.js';
import { auditPytest } from './pytest.js';
import type { Finding, Severity } from './types.js';
import { auditVitest } from './vitest.js';

/** A holder this long is worth a note (not an error: long test suites exist). */
const LONG_HOLD_MS = 60 * 60 * 1000;

export interface DoctorReport {
  version: 1;
  root: string;
  stateDir: string;
  /** False when any finding is an error (or, with --strict, a warning). */
  ok: boolean;
  counts: Record<Severity, number>;
  findings: Finding[];
  /** The subreaper helper runs would use (Linux), and why. */
  helper: HelperReport;
}

/** The lock's state for this project: unsafe state dir, dead tickets, leftovers of dead runs. */
export function auditState(root: string, env: NodeJS.ProcessEnv = process.env): Finding[] {
  const findings: Finding[] = [];
  const stateDir = stateDirPath(env);
  if (existsSync(stateDir)) {
    try {
      assertSafeDir(stateDir, env);
    } catch (error) {
      return [
        {
          severity: 'error',
          check: 'state-dir.unsafe',
          file: stateDir,
          message: `${(error as Error).message.replace(/;.*$/, '')}: seq-test refuses to run`,
          fix: (error as Error).message.replace(/^.*?;\s*/, ''),
        },
      ];
    }
  }
  let key: string | undefined;
  try {
    key = env.SEQ_TEST_KEY ? undefined : loadProjectConfig(root)?.config.key;
  } catch {}
  const status = readStatus({ cwd: root, env, ...(key ? { key } : {}) });
  for (const queue of status.queues) {
    for (const ticket of queue.tickets) {
      if (ticket.state === 'dead') {
        findings.push({
          severity: 'warning',
          check: 'queue.dead-ticket',
          file: ticket.file,
          message: `a ticket of a run that is gone (pid ${ticket.pid}, ${ticket.command}) is still queued; the next run removes it`,
          fix: 'seq-test reap',
        });
      } else if (ticket.state === 'holding' && (ticket.heldMs ?? 0) > LONG_HOLD_MS) {
        findings.push({
          severity: 'info',
          check: 'queue.long-hold',
          message: `pid ${ticket.pid} has held the lock for ${formatDuration(ticket.heldMs ?? 0)} (${ticket.command})`,
          fix: `seq-test status; if it hangs, end it: kill ${ticket.pid}`,
        });
      }
    }
  }
  // Leftovers are found by token, and a dead run's token no longer says which project it ran for: the ones
  // working inside this project are this project's problem; the others are worth a note.
  const ours = status.leftovers.filter((p) => isInside(root, cwdOf(p.pid) ?? '/nonexistent\0'));
  const others = status.leftovers.filter((p) => !ours.includes(p));
  const describe = (list: typeof ours) =>
    `${list.length} process(es) of runs that are gone are still running (${formatBytes(list.reduce((sum, p) => sum + p.rssBytes, 0))}): ${list
      .slice(0, 3)
      .map((p) => `pid ${p.pid} ${oneLine(p.command)}`)
      .join('; ')}${list.length > 3 ? '; …' : ''}`;
  if (ours.length > 0) {
    findings.push({
      severity: 'error',
      check: 'leftovers',
      message: `${describe(ours)}, in this project`,
      fix: 'seq-test reap (seq-test reap --dry-run lists them first)',
    });
  }
  if (others.length > 0) {
    findings.push({
      severity: 'info',
      check: 'leftovers.elsewhere',
      message: `${describe(others)}, outside this project`,
      fix: 'seq-test reap --dry-run, then seq-test reap',
    });
  }
  return findings;
}

export function runDoctor(options: { cwd?: string; strict?: boolean; env?: NodeJS.ProcessEnv } = {}): DoctorReport {
  const env = options.env ?? process.env;
  const root = projectRoot(options.cwd ?? process.cwd());
  const detection = detect(root);
  const read = (file: string) => readText(isAbsolute(file) ? file : join(root, file));
  const helper = auditHelper(env);
  const findings: Finding[] = [
    ...helper.findings,
    ...auditConfig(root),
    ...auditVitest(detection, read),
    ...auditJest(detection, read),
    ...auditPytest(root, detection),
    ...auditPreCommit(detection, read),
    ...auditGitHooks(detection, read),
    ...auditState(root, env),
  ];
  const order: Record<Severity, number> = { error: 0, warning: 1, info: 2 };
  findings.sort((a, b) => order[a.severity] - order[b.severity]);
  const counts = { error: 0, warning: 0, info: 0 };
  for (const f of findings) counts[f.severity]++;
  const ok = counts.error === 0 && (!options.strict || counts.warning === 0);
  return { version: 1, root, stateDir: stateDirPath(env), ok, counts, findings, helper: helper.helper };
}

export function renderDoctor(report: DoctorReport): string {
  const lines: string[] = [`seq-test doctor in ${report.root}`, renderHelper(report.helper)];
  if (report.findings.length === 0) {
    lines.push('no problems found');
    return `${lines.join('\n')}\n`;
  }
  for (const f of report.findings) {
    lines.push(`${f.severity.padEnd(7)} ${f.check}${f.file ? `  ${f.file}` : ''}`);
    lines.push(`        ${f.message}`);
    if (f.fix) lines.push(`        fix: ${f.fix}`);
  }
  const { error, warning, info } = report.counts;
  lines.push('');
  lines.push(`${error} error(s), ${warning} warning(s), ${info} note(s)${report.ok ? '' : ': not safe yet (exit 1)'}`);
  return `${lines.join('\n')}\n`;
}

/** The working directory of a process (Linux /proc), or undefined. */
function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

function oneLine(command: string, max = 80): string {
  const line = command.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}
