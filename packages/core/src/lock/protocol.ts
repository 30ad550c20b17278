/**
 * The on-disk lock protocol, version 1. docs/PROTOCOL.md is the specification; the Python bridge
 * (integrations/pytest) implements the same, and the conformance tests run both against each other.
 */
export const PROTOCOL_VERSION = 1;
/**
 * Version 2 adds memory-aware admission (`--slots auto`): tickets in that mode carry an `admission` field
 * and `v: 2`; fixed-slot tickets stay version 1, which every participant reads as before.
 */
export const AUTO_PROTOCOL_VERSION = 2;
/** The highest version this implementation speaks. */
export const HIGHEST_PROTOCOL_VERSION = AUTO_PROTOCOL_VERSION;

/** A ticket as stored in tickets/<number>-<token>.json. Unknown fields are kept by readers, never required. */
export interface Ticket {
  v: number;
  token: string;
  pid: number;
  start: number;
  boot: string;
  number: number;
  slots: number;
  key: string;
  command: string;
  cwd: string;
  /** Milliseconds since the epoch. */
  enqueuedAt: number;
  /** Set by the owner when it starts holding. */
  startedAt: number | null;
  /** Which implementation wrote it ("node", "python"). */
  impl: string;
  /** Version 2, `--slots auto`: the run's memory prediction (memory/auto.ts validates it). */
  admission?: unknown;
  /** Optional: the owner's parent when it joined, so `status` can say when it was re-parented. */
  parent?: TicketParent;
}

/** The process that started the owner: pid + start time (as `start`), and its short name for display. */
export interface TicketParent {
  pid: number;
  start: number;
  name: string;
}

export const NUMBER_DIGITS = 12;
/** The largest ticket number (12 digits): a joiner never takes more (docs/PROTOCOL.md, "Joining"). */
export const MAX_NUMBER = 999_999_999_999;
const TICKET_NAME = /^(\d{12})-((\d+)\.(\d+)\.([0-9a-f]{6,64}))\.json$/;
const MARKER_NAME = /^((\d+)\.(\d+)\.([0-9a-f]{6,64}))\.json$/;
/** Ticket-like names with a number too wide, written by older implementations that overflowed. */
const OVERFLOW_NAME = /^\d{13,}-((\d+)\.(\d+)\.[0-9a-f]{6,64})\.json$/;
/** `.tmp-<writer's token>-<16 hex>`: the writer's temp file, judged by the writer's liveness. */
const TEMP_NAME = /^\.tmp-((\d+)\.(\d+)\.[0-9a-f]{6,64})-[0-9a-f]{16}$/;

export interface TicketName {
  number: number;
  token: string;
  pid: number;
  start: number;
}

export function ticketFileName(number: number, token: string): string {
  return `${String(number).padStart(NUMBER_DIGITS, '0')}-${token}.json`;
}

export function parseTicketName(name: string): TicketName | undefined {
  const m = TICKET_NAME.exec(name);
  if (!m) return undefined;
  return { number: Number(m[1]), token: m[2] as string, pid: Number(m[3]), start: Number(m[4]) };
}

export function tempFileName(writer: string, random: string): string {
  return `.tmp-${writer}-${random}`;
}

/** The writer of a temp file, or undefined for a name without one (older writers: never removed). */
export function parseTempName(name: string): Omit<TicketName, 'number'> | undefined {
  const m = TEMP_NAME.exec(name);
  return m ? { token: m[1] as string, pid: Number(m[2]), start: Number(m[3]) } : undefined;
}

export function parseOverflowName(name: string): Omit<TicketName, 'number'> | undefined {
  const m = OVERFLOW_NAME.exec(name);
  return m ? { token: m[1] as string, pid: Number(m[2]), start: Number(m[3]) } : undefined;
}

export function parseMarkerName(name: string): Omit<TicketName, 'number'> | undefined {
  const m = MARKER_NAME.exec(name);
  if (!m) return undefined;
  return { token: m[1] as string, pid: Number(m[2]), start: Number(m[3]) };
}

/** Parses ticket content; undefined for garbage. A newer `v` is accepted if the v1 fields are there. */
export function parseTicket(text: string): Ticket | undefined {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof data !== 'object' || data === null) return undefined;
  const t = data as Partial<Ticket>;
  if (
    typeof t.v !== 'number' ||
    typeof t.token !== 'string' ||
    typeof t.pid !== 'number' ||
    typeof t.start !== 'number'
  ) {
    return undefined;
  }
  return {
    v: t.v,
    token: t.token,
    pid: t.pid,
    start: t.start,
    boot: typeof t.boot === 'string' ? t.boot : '',
    number: typeof t.number === 'number' ? t.number : 0,
    slots: typeof t.slots === 'number' && t.slots >= 1 ? Math.floor(t.slots) : 1,
    key: typeof t.key === 'string' ? t.key : '',
    command: typeof t.command === 'string' ? t.command : '',
    cwd: typeof t.cwd === 'string' ? t.cwd : '',
    enqueuedAt: typeof t.enqueuedAt === 'number' ? t.enqueuedAt : 0,
    startedAt: typeof t.startedAt === 'number' ? t.startedAt : null,
    impl: typeof t.impl === 'string' ? t.impl : 'unknown',
    ...(t.admission !== undefined ? { admission: t.admission } : {}),
    ...(parseParent(t.parent) ?? {}),
  };
}

/** The optional `parent` field; anything malformed counts as absent (it is only ever shown). */
function parseParent(value: unknown): { parent: TicketParent } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Partial<TicketParent>;
  if (!Number.isSafeInteger(p.pid) || (p.pid as number) < 1 || typeof p.start !== 'number') return undefined;
  const name = typeof p.name === 'string' ? p.name.slice(0, 64) : '';
  return { parent: { pid: p.pid as number, start: p.start, name } };
}
