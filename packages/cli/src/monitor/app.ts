import { type CancelOutcome, formatBytes, type StatusReport, type TicketStatus } from '@seq-test/core/internal';
import { Box, Text, useApp, useInput, useStdout } from 'ink';
import React, { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { describeReparented } from '../commands/status.js';
import {
  afterCancel,
  afterRefresh,
  type Confirm,
  initialUi,
  KEYS_HELP,
  keyNames,
  type Message,
  pressKey,
} from './controls.js';
import { buildLines, clip, findTicket, type Line, reselect, selectable, ticketCells, visibleWindow } from './model.js';
import { describeSystem, type SystemSample } from './system.js';

// No JSX: plain createElement keeps the CLI's TypeScript and build settings untouched.
const h = React.createElement;

export interface Snapshot {
  report: StatusReport;
  system: SystemSample;
  /** When it was taken (ms since the epoch). */
  at: number;
  /** Why the last refresh failed; the previous report stays on screen. */
  error: string | null;
}

export interface MonitorProps {
  initial: Snapshot;
  load: (previous: Snapshot) => Snapshot;
  /** Ends the run of a token (core's cancelRun: TERM, KILL after the grace, leftovers reaped, ticket gone). */
  cancel: (token: string) => Promise<CancelOutcome>;
  /** Between SIGTERM and SIGKILL, for the confirmation's text. */
  graceMs: number;
  intervalMs: number;
  /** What the header says is watched: a key, or "all keys". */
  scope: string;
}

export function MonitorApp({ initial, load, cancel, graceMs, intervalMs, scope }: MonitorProps): React.ReactElement {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [size, setSize] = useState({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const [state, setState] = useState(() => ({ snap: initial, ui: initialUi(initial.report) }));
  // Key handling reads the state of the last render synchronously (cancel is a side effect; it must run once).
  const current = useRef(state);
  current.current = state;

  const refresh = useCallback(
    () =>
      setState(({ snap, ui }) => {
        const next = load(snap);
        return { snap: next, ui: afterRefresh(ui, next.report) };
      }),
    [load],
  );

  // A cancel runs for up to the grace and more (leftovers); the screen keeps refreshing meanwhile.
  const startCancel = useCallback(
    (token: string) => {
      void cancel(token)
        .catch(
          (error: unknown): CancelOutcome => ({
            cancelled: false,
            pid: null,
            reason: error instanceof Error ? error.message : String(error),
          }),
        )
        .then((outcome) => {
          setState((s) => ({ ...s, ui: afterCancel(s.ui, token, outcome) }));
          refresh();
        });
    },
    [cancel, refresh],
  );

  useEffect(() => {
    const timer = setInterval(refresh, intervalMs);
    return () => clearInterval(timer);
  }, [refresh, intervalMs]);

  useEffect(() => {
    const onResize = () => setSize({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);

  useInput((input, key) => {
    let { ui } = current.current;
    const { report } = current.current.snap;
    let quit = false;
    for (const name of keyNames(input, key)) {
      const result = pressKey(ui, name, report, startCancel);
      ui = result.ui;
      if (result.quit) {
        quit = true;
        break;
      }
    }
    current.current = { ...current.current, ui };
    setState((s) => ({ ...s, ui }));
    if (quit) exit();
  });

  const { snap, ui } = state;
  const { confirm, message } = ui;
  const lines = useMemo(() => buildLines(snap.report), [snap]);
  const selected = reselect(selectable(lines), ui.selection);
  const ticket = findTicket(snap.report, selected);

  // One line less than the terminal: a frame as tall as the screen makes Ink clear the screen on every frame.
  const width = Math.max(size.columns, 20);
  const height = Math.max(size.rows - 1, 4);
  const showDetails = height >= 14;
  const fixed = 3 /* header, system, columns */ + (showDetails ? 3 : 0) + 2; /* message, keys */
  const bodyHeight = Math.max(height - fixed, 1);
  const focus = lines.findIndex((line) => line.kind === 'ticket' && line.ticket.token === selected);
  const view = visibleWindow(lines.length, Math.max(focus, 0), bodyHeight);
  const depth = lines.reduce((max, line) => (line.kind === 'ticket' ? Math.max(max, line.depth) : max), 0);
  const columns = layout(width, depth);

  const body = lines.slice(view.start, view.end).map((line, i) => {
    const key = `${view.start + i}`;
    // When the list is longer than the screen, the first/last visible line says how much is hidden.
    if (i === 0 && view.start > 0) return h(Text, { key, dimColor: true }, `  ↑ ${view.start + 1} more`);
    if (i === view.end - view.start - 1 && view.end < lines.length)
      return h(Text, { key, dimColor: true }, `  ↓ ${lines.length - view.end + 1} more`);
    return h(Box, { key, width }, renderLine(line, columns, line.kind === 'ticket' && line.ticket.token === selected));
  });

  return h(
    Box,
    { flexDirection: 'column', width, height },
    h(
      Text,
      { wrap: 'truncate-end' },
      h(Text, { bold: true, color: 'cyan' }, 'seq-test monitor'),
      `  ${scope}  ${clock(snap.at)}  every ${intervalMs / 1000} s  state ${snap.report.stateDir}`,
    ),
    h(Text, { wrap: 'truncate-end', dimColor: true }, describeSystem(snap.system)),
    h(Text, { wrap: 'truncate-end', bold: true }, headerRow(columns)),
    h(Box, { flexDirection: 'column', height: bodyHeight }, ...body),
    showDetails ? details(ticket, width) : null,
    messageLine(snap, confirm, message, graceMs),
    h(Text, { wrap: 'truncate-end', dimColor: true }, KEYS_HELP),
  );
}

interface Columns {
  state: number;
  position: number;
  pid: number;
  waited: number;
  held: number;
  memory: number;
  procs: number;
  command: number;
  cwd: number;
}

function layout(width: number, depth: number): Columns {
  const fixed = { state: 8 + depth * 4, position: 4, pid: 7, waited: 7, held: 7, memory: 8, procs: 5 };
  const used = 2 + Object.values(fixed).reduce((sum, n) => sum + n + 1, 0);
  const rest = Math.max(width - used, 20);
  const command = Math.max(Math.floor(rest * 0.6), 10);
  return { ...fixed, command, cwd: Math.max(rest - command - 1, 5) };
}

function headerRow(c: Columns): string {
  return (
    '  ' +
    [
      clip('STATE', c.state),
      clip('POS', c.position),
      clip('PID', c.pid),
      clip('WAITED', c.waited),
      clip('HELD', c.held),
      clip('MEMORY', c.memory),
      clip('PROCS', c.procs),
      clip('COMMAND', c.command),
      'CWD',
    ].join(' ')
  );
}

const STATE_COLOR: Record<TicketStatus['state'], string> = { holding: 'green', waiting: 'yellow', dead: 'red' };

function renderLine(line: Line, c: Columns, isSelected: boolean): React.ReactElement {
  switch (line.kind) {
    case 'key':
      return h(
        Text,
        { wrap: 'truncate-end' },
        h(Text, { bold: true, color: 'blue' }, `KEY ${line.key}`),
        h(Text, { dimColor: true }, `  ${line.summary}`),
      );
    case 'idle':
      return h(Text, { wrap: 'truncate-end', color: 'green' }, `  ${line.text}`);
    case 'leftovers':
      return h(
        Text,
        { wrap: 'truncate-end', bold: true, color: 'red' },
        `LEFTOVERS of dead runs: ${line.count} process(es) (end them with: seq-test reap)`,
      );
    case 'leftover': {
      const p = line.process;
      return h(
        Text,
        { wrap: 'truncate-end', color: 'red' },
        `  pid ${p.pid}  ${clip(formatBytes(p.rssBytes), 10)} run ${p.token}  ${p.command}`,
      );
    }
    case 'ticket': {
      const t = line.ticket;
      const cells = ticketCells(t);
      const indent = line.depth > 0 ? `${'  '.repeat(line.depth - 1)}  ↳ ` : '';
      const rest = [
        clip(cells.position, c.position),
        clip(cells.pid, c.pid),
        clip(cells.waited, c.waited),
        clip(cells.held, c.held),
        clip(cells.memory, c.memory),
        clip(cells.procs, c.procs),
        clip(t.reparented ? `[re-parented] ${t.command}` : t.command, c.command),
        clip(t.cwd, c.cwd, 'middle'),
      ].join(' ');
      return h(
        Text,
        { wrap: 'truncate-end', inverse: isSelected },
        isSelected ? '▶ ' : '  ',
        h(Text, { color: STATE_COLOR[t.state], bold: t.state === 'holding' }, clip(`${indent}${cells.state}`, c.state)),
        ` ${rest}`,
      );
    }
  }
}

function details(t: TicketStatus | undefined, width: number): React.ReactElement {
  const lines = t
    ? [
        [
          `selected: pid ${t.pid}`,
          t.state === 'waiting' ? `waiting #${t.position}` : t.state,
          t.enqueuedAt === null ? null : `queued ${clock(t.enqueuedAt)}`,
          t.startedAt === null ? null : `holding since ${clock(t.startedAt)}`,
          `impl ${t.impl}`,
          t.nested.length > 0 ? `${t.nested.length} nested run(s)` : null,
          t.reparented ? describeReparented(t) : null,
        ]
          .filter(Boolean)
          .join(' · '),
        `command: ${t.command}`,
        `cwd: ${t.cwd}   ticket: ${t.file}`,
      ]
    : ['nothing selected', '', ''];
  return h(
    Box,
    { flexDirection: 'column', width },
    ...lines.map((text, i) => h(Text, { key: `d${i}`, wrap: 'truncate-end', dimColor: i > 0 }, text || ' ')),
  );
}

function messageLine(
  snap: Snapshot,
  confirm: Confirm | null,
  message: Message | null,
  graceMs: number,
): React.ReactElement {
  if (confirm) {
    return h(
      Text,
      { wrap: 'truncate-end', bold: true, color: 'yellow' },
      `Cancel ${confirm.state} run pid ${confirm.pid} (#${confirm.position}: ${confirm.command})? y/n  (SIGTERM, SIGKILL after ${graceMs / 1000} s; its leftovers are ended)`,
    );
  }
  if (snap.error) return h(Text, { wrap: 'truncate-end', color: 'red' }, `could not refresh: ${snap.error}`);
  if (message) {
    const color = message.tone === 'good' ? 'green' : message.tone === 'bad' ? 'red' : undefined;
    return h(Text, { wrap: 'truncate-end', color }, message.text);
  }
  return h(Text, null, ' ');
}

function clock(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}
