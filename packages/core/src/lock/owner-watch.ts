import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { isAlive } from '../identity.js';
import { chooseHelper } from '../subreaper.js';

/** An owner of a ticket: pid and start time (as in its ticket name). */
export interface Owner {
  pid: number;
  start: number;
}

/**
 * Tells a waiter when an owner ahead of it ends, without polling: a SIGKILLed owner changes no file, so
 * inotify cannot see it, and Node has no pidfd. The helper (`seq-test-subreaper --watch-owners`,
 * native/owner-watch.c) holds a pidfd per owner and writes a line when one ends; while it watches every
 * owner a waiter depends on (`covers`), the waiter needs no timer at all. Linux with a usable helper only;
 * elsewhere `start` returns undefined and the waiter polls as before.
 */
export class OwnerWatch {
  private generation = 0;
  private wanted = new Map<number, Owner>();
  private acknowledged = -1;
  private failed = false;
  private ended = false;
  private pending = '';
  /** Owners reported gone: never asked for again (a zombie, or an owner judged alive in another clock). */
  private readonly reported = new Set<string>();

  private constructor(
    private readonly child: ChildProcessByStdio<Writable, Readable, null>,
    /** Called when an owner ended (`gone`: read the queue in full) or the watch changed what it covers. */
    private readonly onChange: (ownerGone: boolean) => void,
  ) {
    child.stdout.on('data', (chunk: Buffer) => this.read(chunk));
    child.stdin.on('error', () => {}); // its end going away is seen as 'exit'
    const end = () => {
      if (this.ended) return;
      this.ended = true;
      this.onChange(false);
    };
    child.once('exit', end);
    child.once('error', end);
  }

  /** Starts the watch, or undefined where there is no helper to do it (the waiter polls). */
  static start(env: NodeJS.ProcessEnv, onChange: (ownerGone: boolean) => void): OwnerWatch | undefined {
    let path: string | undefined;
    try {
      path = chooseHelper(env).path; // the runner warns about a missing helper; waiting just polls without it
    } catch {
      return undefined;
    }
    if (!path) return undefined;
    try {
      // No environment: it carries no run token, so nothing counts it as part of a run.
      const child = spawn(path, ['--watch-owners'], { stdio: ['pipe', 'pipe', 'ignore'], env: {}, cwd: '/' });
      return new OwnerWatch(child, onChange);
    } catch {
      return undefined;
    }
  }

  /** Watches exactly these owners from now on. */
  watch(owners: Owner[]): void {
    const next = new Map<number, Owner>();
    for (const owner of owners) if (!this.reported.has(keyOf(owner))) next.set(owner.pid, owner);
    if (this.sameAs(next) && !this.failed) return;
    this.wanted = next;
    this.generation++;
    this.failed = false;
    if (!this.ended) this.child.stdin.write(`watch ${this.generation} ${[...next.keys()].join(' ')}\n`);
  }

  /** True while every one of `owners` is watched: nothing but a file change or their end can matter. */
  covers(owners: Owner[]): boolean {
    if (this.ended || this.failed || this.acknowledged !== this.generation) return false;
    return owners.every((o) => this.wanted.get(o.pid)?.start === o.start);
  }

  close(): void {
    this.ended = true;
    // It started nothing, and takes no signal but KILL (subreaper.c blocks them all). Still our unreaped child.
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    this.child.stdin.destroy();
    this.child.stdout.destroy();
  }

  private sameAs(next: Map<number, Owner>): boolean {
    if (next.size !== this.wanted.size) return false;
    for (const [pid, owner] of next) if (this.wanted.get(pid)?.start !== owner.start) return false;
    return true;
  }

  private read(chunk: Buffer): void {
    this.pending += chunk.toString('latin1');
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines) {
      const [kind, gen, value] = line.split(' ');
      const current = Number(gen) === this.generation;
      if (kind === 'gone') {
        const owner = this.wanted.get(Number(value));
        if (owner && current) {
          this.reported.add(keyOf(owner));
          this.wanted.delete(owner.pid);
          this.failed = true; // covered again only by the next watch() (without it)
        }
        this.onChange(true);
      } else if (kind === 'watching' && current) {
        this.acknowledged = this.generation;
        // The pidfds are open now: an owner that ended before (its pid perhaps reused) is caught here.
        const dead = [...this.wanted.values()].filter((o) => !isAlive(o));
        for (const owner of dead) {
          this.reported.add(keyOf(owner));
          this.wanted.delete(owner.pid);
        }
        this.onChange(dead.length > 0);
      } else if (kind === 'error' && current) {
        this.failed = true;
        this.onChange(false);
      }
    }
  }
}

const keyOf = (owner: Owner) => `${owner.pid}.${owner.start}`;
