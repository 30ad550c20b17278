import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { EXIT, SeqTestError } from '../errors.js';
import { isAlive, type ProcessIdentity } from '../identity.js';
import { processTable } from '../proc/index.js';
import {
  AUTO_PROTOCOL_VERSION,
  HIGHEST_PROTOCOL_VERSION,
  MAX_NUMBER,
  PROTOCOL_VERSION,
  parseMarkerName,
  parseOverflowName,
  parseTempName,
  parseTicket,
  parseTicketName,
  type Ticket,
  tempFileName,
  ticketFileName,
} from './protocol.js';

export interface QueueEntry {
  name: string;
  file: string;
  number: number;
  token: string;
  owner: ProcessIdentity;
  /** Undefined when the file could not be read or parsed (its name still tells the owner). */
  ticket: Ticket | undefined;
  alive: boolean;
}

export interface QueueState {
  /** Every ticket, in queue order (number, then token). */
  tickets: QueueEntry[];
  /** Tokens of live processes that are between "choosing" and "ticket written". */
  choosing: string[];
  deadMarkers: string[];
  /**
   * Files named like tickets with more than 12 digits (left by older versions that overflowed): never part
   * of the order, removed with the dead tickets once their owner is dead.
   */
  deadOverflow: string[];
}

export interface Decision {
  holding: boolean;
  /** 1-based place among live tickets. */
  position: number;
  ahead: QueueEntry[];
  /** Another process is choosing its number: wait for it (bakery rule). */
  blockedByChoosing: boolean;
  /** Our own ticket vanished (removed by hand, or by a tool that thought us dead). */
  lost: boolean;
}

export type TicketDraft = Omit<Ticket, 'v' | 'number' | 'startedAt'>;

/** A writer whose temp file vanished before its rename (removed by an older reader) tries this often. */
const WRITE_ATTEMPTS = 5;

/**
 * One queue directory: tickets/, choosing/ and nested/ (docs/PROTOCOL.md). Ordering follows Lamport's
 * bakery algorithm: a process announces itself in choosing/, takes max+1 as its number, writes its ticket,
 * then withdraws the announcement; nobody decides while a live process is choosing, so a latecomer can
 * never slip in ahead of a ticket that already holds.
 */
export class Queue {
  readonly ticketsDir: string;
  readonly choosingDir: string;
  readonly nestedDir: string;
  private readonly warned = new Set<string>();

  /**
   * @param dir the queue dir: `<state dir>/q-<hash>` (whose state dir the caller has validated) or a
   *   nested queue made by nested().
   * @param above the directories between the state dir and `dir` (nested queues: every queue dir and
   *   nested/ above), checked like the queue's own: nothing is ever reached through a symbolic link.
   */
  constructor(
    readonly dir: string,
    private readonly warn: (message: string) => void = () => {},
    private readonly above: readonly string[] = [],
  ) {
    this.ticketsDir = join(dir, 'tickets');
    this.choosingDir = join(dir, 'choosing');
    this.nestedDir = join(dir, 'nested');
  }

  /** Creates the queue's directories; a damaged queue (a file or a symlink where a directory belongs) is a clear error. */
  ensure(): this {
    // One level at a time, each checked before the next is made inside it: never through a symlink.
    for (const d of [...this.above, this.dir, this.ticketsDir, this.choosingDir]) {
      try {
        mkdirSync(d, { mode: 0o700 });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') throw fileSystemError(`create ${d}`, dirname(d), error);
      }
      this.assertReal([d]);
    }
    return this;
  }

  /** Whether the queue dir exists (as a real directory; a damaged one is an error). */
  exists(): boolean {
    this.assertReal([...this.above, this.dir]);
    return kindOf(this.dir) === 'dir';
  }

  /** The queue of runs started inside the holder with this token. */
  nested(token: string): Queue {
    return new Queue(join(this.nestedDir, token), this.warn, [...this.above, this.dir, this.nestedDir]);
  }

  enqueue(draft: TicketDraft): QueueEntry {
    this.ensure();
    const marker = join(this.choosingDir, `${draft.token}.json`);
    writeAtomic(this.choosingDir, marker, draft.token, {
      v: PROTOCOL_VERSION,
      token: draft.token,
      pid: draft.pid,
      start: draft.start,
      boot: draft.boot,
    });
    try {
      const state = this.read();
      let highest = state.tickets.reduce((max, t) => Math.max(max, t.number), 0);
      if (highest >= MAX_NUMBER) {
        // The limit (docs/PROTOCOL.md, "Joining"): dead tickets there go first; a live one is refused.
        const top = state.tickets.filter((t) => t.number >= MAX_NUMBER);
        for (const t of top) if (!t.alive) this.remove(t);
        highest = this.read().tickets.reduce((max, t) => Math.max(max, t.number), 0);
        if (highest >= MAX_NUMBER) {
          const owner = top.find((t) => t.alive)?.owner.pid;
          throw new SeqTestError(
            `the queue ${this.dir} has used up its ticket numbers: a run (pid ${owner ?? '?'}) holds number ${MAX_NUMBER}, the largest there is; numbers start again at 1 once it leaves the queue (end it, or remove its ticket if it is not a real run)`,
            EXIT.USAGE,
          );
        }
      }
      const number = highest + 1;
      const v = draft.admission === undefined ? PROTOCOL_VERSION : AUTO_PROTOCOL_VERSION;
      const ticket: Ticket = { ...draft, v, number, startedAt: null };
      const name = ticketFileName(number, draft.token);
      const file = join(this.ticketsDir, name);
      writeAtomic(this.ticketsDir, file, draft.token, ticket);
      return {
        name,
        file,
        number,
        token: draft.token,
        owner: { pid: draft.pid, start: draft.start },
        ticket,
        alive: true,
      };
    } finally {
      unlinkQuiet(marker);
    }
  }

  /** Reads the queue without changing it. Garbage is reported once and skipped (or judged by its name). */
  read(): QueueState {
    // Bakery order: who is choosing first, then the numbers. Read the other way round, a contender that
    // writes its ticket and withdraws its marker between the two listings is seen in neither (two holders).
    this.assertReal(this.above);
    const choosing: string[] = [];
    const deadMarkers: string[] = [];
    const deadOverflow: string[] = [];
    for (const name of this.list(this.choosingDir)) {
      const file = join(this.choosingDir, name);
      if (name.startsWith('.tmp-')) {
        removeIfWriterDead(file, name);
        continue;
      }
      const parsed = parseMarkerName(name);
      if (!parsed) {
        this.warnOnce(name, `ignoring foreign file ${file}`);
        continue;
      }
      (isAlive(parsed) ? choosing : deadMarkers).push(parsed.token);
    }
    const boot = processTable().bootId();
    const tickets: QueueEntry[] = [];
    for (const name of this.list(this.ticketsDir)) {
      const file = join(this.ticketsDir, name);
      if (name.startsWith('.tmp-')) {
        removeIfWriterDead(file, name);
        continue;
      }
      const parsed = parseTicketName(name);
      const overflow = parsed ? undefined : parseOverflowName(name);
      if (overflow) {
        if (!isAlive(overflow)) deadOverflow.push(file);
        else this.warnOnce(name, `ignoring ${file}: its number has more than 12 digits`);
        continue;
      }
      if (!parsed) {
        this.warnOnce(name, `ignoring foreign file ${file}`);
        continue;
      }
      const { ticket, problem, gone } = readTicket(file);
      if (gone) continue; // released between readdir and read
      if (problem) this.warnOnce(name, `ticket ${file}: ${problem}`);
      if (ticket && ticket.v > HIGHEST_PROTOCOL_VERSION) {
        this.warnOnce(
          `${name}:v`,
          `ticket ${file} is protocol version ${ticket.v} (we speak ${HIGHEST_PROTOCOL_VERSION}); honouring its place and owner`,
        );
      }
      const owner = { pid: parsed.pid, start: parsed.start };
      const alive = isAlive(owner) && (!ticket?.boot || ticket.boot === boot);
      tickets.push({ name, file, number: parsed.number, token: parsed.token, owner, ticket, alive });
    }
    tickets.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { tickets, choosing, deadMarkers, deadOverflow };
  }

  /**
   * Removes dead tickets and markers. `reapRun` is awaited for each dead ticket before its file goes, so the
   * next holder never starts while the dead run's leftovers still run.
   */
  async tidy(state: QueueState, reapRun: (token: string) => Promise<void>): Promise<QueueEntry[]> {
    for (const token of state.deadMarkers) unlinkQuiet(join(this.choosingDir, `${token}.json`));
    for (const file of state.deadOverflow) this.removeFile(file);
    const dead = state.tickets.filter((t) => !t.alive);
    for (const entry of dead) {
      await reapRun(entry.token);
      this.remove(entry);
    }
    return dead;
  }

  decide(state: QueueState, mine: QueueEntry, slots: number): Decision {
    const live = state.tickets.filter((t) => t.alive);
    const index = live.findIndex((t) => t.name === mine.name);
    const ahead = index === -1 ? [] : live.slice(0, index);
    const blockedByChoosing = state.choosing.some((token) => token !== mine.token);
    return {
      holding: index !== -1 && !blockedByChoosing && ahead.length < slots,
      position: index + 1,
      ahead,
      blockedByChoosing,
      lost: index === -1,
    };
  }

  /**
   * The cheap check for the wake-ups between full reads: two directory listings and a /proc read per
   * ticket ahead, no ticket file read. Answers only when a full read + decide() would answer the same:
   * - not holding, with the names of the tickets ahead of ours: a live choosing marker other than ours,
   *   or `slots` live tickets ahead of ours (checked in order, stopping there);
   * - holding: no live choosing marker, and every ticket ahead alive but fewer than `slots` of them.
   * Undefined for anything else (a dead ticket ahead to tidy, our ticket gone), left to the full read.
   * Listing choosing/ before tickets/ keeps the bakery order of read().
   */
  quickCheck(mine: QueueEntry, slots: number): { holding: false; ahead: string[] } | { holding: true } | undefined {
    let choosing = false;
    for (const name of this.list(this.choosingDir)) {
      const parsed = parseMarkerName(name);
      if (parsed && parsed.token !== mine.token && isAlive(parsed)) choosing = true;
    }
    const names = this.list(this.ticketsDir)
      .filter((name) => parseTicketName(name) !== undefined)
      .sort();
    const index = names.indexOf(mine.name);
    if (index === -1) return undefined;
    const ahead = names.slice(0, index);
    if (choosing) return { holding: false, ahead };
    let alive = 0;
    for (const name of ahead) {
      const parsed = parseTicketName(name);
      if (!parsed || !isAlive(parsed)) return undefined;
      if (++alive >= slots) return { holding: false, ahead };
    }
    return { holding: true };
  }

  markStarted(mine: QueueEntry, startedAt = Date.now()): void {
    if (!mine.ticket) return;
    mine.ticket = { ...mine.ticket, startedAt };
    writeAtomic(this.ticketsDir, mine.file, mine.token, mine.ticket);
  }

  /**
   * Leaves the queue (or removes a dead ticket): the ticket and the nested queue of its run go. Idempotent.
   * Nothing is removed through a symbolic link: a nested/ that is not a real directory is left alone.
   */
  remove(mine: Pick<QueueEntry, 'file' | 'token'>): void {
    removeQuiet(mine.file); // a directory named like a ticket is garbage too
    if (kindOf(this.nestedDir) === 'dir' && this.above.every((d) => kindOf(d) === 'dir'))
      removeQuiet(join(this.nestedDir, mine.token));
  }

  /** Removes one file of this queue (a dead overflow ticket). */
  removeFile(file: string): void {
    unlinkQuiet(file);
  }

  /** The names in one of our directories; absent is empty, a symlink or a file there is damage. */
  private list(dir: string): string[] {
    this.assertReal([dir]);
    try {
      return readdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      this.assertReal([dir]);
      throw fileSystemError(`read ${dir}`, dir, error);
    }
  }

  /** Each of `dirs` is absent or a real directory; anything else (a symlink above all) is refused. */
  private assertReal(dirs: readonly string[]): void {
    for (const d of dirs) {
      const kind = kindOf(d);
      if (kind === 'dir' || kind === 'absent') continue;
      throw new SeqTestError(
        `the queue dir ${this.dir} is damaged (${d} is ${kind === 'symlink' ? 'a symbolic link' : 'not a directory'}; seq-test never follows links in its state dir); remove it with rm -rf ${this.dir} (no run of this key may be active) and try again`,
      );
    }
  }

  private warnOnce(id: string, message: string): void {
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.warn(message);
  }
}

/**
 * Writers never expose a half-written file: write a temp file named after the writer's token in the same
 * directory, then rename. Readers remove a temp file only once its writer is dead (never by its age), but an
 * older reader judged by mtime: a temp file that vanished before its rename is written again.
 */
export function writeAtomic(dir: string, file: string, writer: string, data: unknown): void {
  const text = `${JSON.stringify(data)}\n`;
  for (let attempt = 1; ; attempt++) {
    const temp = join(dir, tempFileName(writer, randomBytes(8).toString('hex')));
    try {
      writeFileSync(temp, text, { mode: 0o600, flag: 'wx' });
      renameSync(temp, file);
      return;
    } catch (error) {
      unlinkQuiet(temp);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && attempt < WRITE_ATTEMPTS && kindOf(dir) === 'dir')
        continue;
      throw fileSystemError(`write ${file}`, dir, error);
    }
  }
}

/**
 * A file-system failure in the state dir as one line naming a fix (the state dir is ours and private, so
 * the chmod offered here touches nothing of anyone else's).
 */
function fileSystemError(what: string, dir: string, error: unknown): SeqTestError {
  if (error instanceof SeqTestError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? String(error);
  const fix =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? `the file system holding ${dir} is full: free some space, or set SEQ_TEST_STATE_DIR to a private directory on another one`
      : code === 'EACCES' || code === 'EPERM'
        ? `make it yours and writable again with chmod u+rwx ${dir}, or set SEQ_TEST_STATE_DIR to another private directory`
        : code === 'EROFS'
          ? `the file system is read-only: set SEQ_TEST_STATE_DIR to a private directory on a writable one`
          : `check ${dir}, or set SEQ_TEST_STATE_DIR to another private directory`;
  return new SeqTestError(`cannot ${what} (${code}); ${fix}`);
}

/** Ticket content, read without following a symlink and without blocking on a FIFO. */
function readTicket(file: string): { ticket?: Ticket; problem?: string; gone?: boolean } {
  try {
    const text = readRegularFile(file);
    if (text === undefined) return { problem: 'not a regular file; judged by its name only' };
    const ticket = parseTicket(text);
    return ticket ? { ticket } : { problem: 'unreadable content (garbage or truncated); judged by its name only' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { gone: true };
    if (code === 'ELOOP') return { problem: 'not a regular file; judged by its name only' };
    return { problem: `cannot read (${code}); judged by its name only` };
  }
}

/** Largest file of ours worth reading (a ticket is well under 1 KB; the rest is garbage). */
const MAX_READ_BYTES = 1 << 20;

/**
 * The content of a regular file, or undefined when `file` is something else (a directory, a FIFO, a device):
 * opened with O_NOFOLLOW (a symlink fails with ELOOP) and O_NONBLOCK (a FIFO never blocks), then fstat'ed.
 */
export function readRegularFile(file: string): string | undefined {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) return undefined;
    const buffer = Buffer.alloc(Math.min(stats.size + 1, MAX_READ_BYTES));
    let length = 0;
    for (let n = 1; n > 0 && length < buffer.length; length += n)
      n = readSync(fd, buffer, length, buffer.length - length, null);
    return buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}

/** A writer's temp file goes once its writer is dead; one without a token (older writers) is left alone. */
function removeIfWriterDead(file: string, name: string): void {
  const writer = parseTempName(name);
  if (writer && !isAlive(writer)) unlinkQuiet(file);
}

function kindOf(path: string): 'dir' | 'absent' | 'symlink' | 'other' {
  try {
    const stats = lstatSync(path);
    return stats.isDirectory() ? 'dir' : stats.isSymbolicLink() ? 'symlink' : 'other';
  } catch {
    return 'absent';
  }
}

/** Best effort: a damaged entry that cannot be removed must not stop anyone from leaving or joining. */
function removeQuiet(path: string): void {
  try {
    // Usually there is nothing to remove (a run with no nested calls has no nested queue): a plain
    // rmdir/unlink answers that without loading the recursive remover (a millisecond in a fresh process).
    try {
      rmdirSync(path);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code === 'ENOTDIR') {
        unlinkSync(path);
        return;
      }
    }
    rmSync(path, { recursive: true, force: true });
  } catch {}
}

export function unlinkQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {}
}
