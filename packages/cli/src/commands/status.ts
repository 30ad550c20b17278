import { formatBytes, formatDuration, readStatus, type StatusReport, type TicketStatus } from '@seq-test/core/internal';
import type { Command } from 'commander';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .summary('show who holds the lock and who waits')
    .description(
      'Holders and queue of this project (or of every key with --all-keys), and leftovers of dead runs of this ' +
        'state dir (those `seq-test reap` ends).',
    )
    .option('--key <key>', 'lock key (default: $SEQ_TEST_KEY, else the git top-level, else cwd)')
    .option('--all-keys', 'every queue of this user')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  $ seq-test status\n  $ seq-test status --all-keys --json')
    .action((raw: { key?: string; allKeys?: boolean; json?: boolean }) => {
      const report = readStatus({ key: raw.key, allKeys: raw.allKeys });
      process.stdout.write(raw.json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report));
    });
}

export function renderStatus(report: StatusReport): string {
  const lines: string[] = [];
  const queues = report.queues.filter((q) => q.tickets.length > 0 || report.queues.length === 1);
  if (queues.length === 0) lines.push('no queues');
  for (const queue of queues) {
    lines.push(`${queue.key}`);
    if (queue.tickets.length === 0) lines.push('  idle: nobody holds or waits');
    for (const ticket of queue.tickets) lines.push(...renderTicket(ticket, '  '));
  }
  if (report.leftovers.length > 0) {
    lines.push(`leftovers of dead runs (end them with: seq-test reap):`);
    for (const p of report.leftovers) lines.push(`  pid ${p.pid}  ${formatBytes(p.rssBytes)}  ${p.command}`);
  }
  return `${lines.join('\n')}\n`;
}

/** "re-parented: its parent 1234 (sh) is gone" (the monitor shows the same words). */
export function describeReparented(t: TicketStatus): string {
  const parent = t.parent ? `its parent ${t.parent.pid}${t.parent.name ? ` (${t.parent.name})` : ''}` : 'its parent';
  return `re-parented: ${parent} is gone`;
}

/** `--slots auto` tickets: predicted peak, live memory, and why the head waits. */
function renderMemory(m: NonNullable<TicketStatus['memory']>): string | undefined {
  if (m.mode !== 'auto') return undefined;
  const parts = [
    `predicted peak ${m.predictedBytes === null ? 'unknown (no history yet)' : `~${formatBytes(m.predictedBytes)}`}`,
  ];
  if (m.liveBytes !== null)
    parts.push(`now ${formatBytes(m.liveBytes)} ${m.measure === 'pss' ? 'Pss' : (m.measure ?? '')}`.trim());
  if (m.waitReason) parts.push(`waits: ${m.waitReason}`);
  return `memory: ${parts.join(', ')}`;
}

function renderTicket(t: TicketStatus, indent: string): string[] {
  const head =
    t.state === 'holding'
      ? `holding  pid ${t.pid}  for ${formatDuration(t.heldMs ?? 0)}  ${formatBytes(t.rssBytes ?? 0)} in ${t.processes ?? 0} process(es)`
      : t.state === 'waiting'
        ? `#${t.position} waiting  pid ${t.pid}  for ${formatDuration(t.waitedMs ?? 0)}`
        : `dead     pid ${t.pid}  (removed by the next waiter or \`seq-test reap\`)`;
  const lines = [
    `${indent}${head}  ${t.command}`,
    `${indent}         cwd ${t.cwd}${t.impl !== 'node' ? `  (${t.impl})` : ''}`,
  ];
  const memory = t.memory ? renderMemory(t.memory) : undefined;
  if (memory) lines.push(`${indent}         ${memory}`);
  if (t.reparented) lines.push(`${indent}         ${describeReparented(t)}; end it with: seq-test cancel ${t.pid}`);
  for (const nested of t.nested) lines.push(...renderTicket(nested, `${indent}  ↳ `));
  return lines;
}
