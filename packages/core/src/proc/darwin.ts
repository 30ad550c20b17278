import { execFileSync } from 'node:child_process';
import type { ProcessInfo, ProcessTable } from './types.js';

/**
 * macOS (best effort): one `ps` spawn per sweep. Start time is `lstart`, which has one-second resolution,
 * so pid reuse within the same second is not detected. Other processes' environments are read with
 * `ps -E` (our own user's only), far slower than /proc.
 */
export class DarwinProcessTable implements ProcessTable {
  list(only?: (pid: number) => boolean): ProcessInfo[] {
    const all = this.ps(['-A']);
    return only ? all.filter((info) => only(info.pid)) : all;
  }

  get(pid: number): ProcessInfo | undefined {
    return this.ps(['-p', String(pid)])[0];
  }

  envValue(pid: number, name: string): string | undefined {
    try {
      const out = execFileSync('ps', ['-E', '-ww', '-o', 'command=', '-p', String(pid)], { encoding: 'utf8' });
      const match = new RegExp(`(?:^|\\s)${name}=(\\S*)`).exec(out);
      return match?.[1];
    } catch {
      return undefined;
    }
  }

  commandLine(pid: number): string {
    try {
      return execFileSync('ps', ['-ww', '-o', 'command=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    } catch {
      return `pid ${pid}`;
    }
  }

  bootId(): string {
    try {
      return execFileSync('sysctl', ['-n', 'kern.boottime'], { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown-boot';
    }
  }

  private ps(select: string[]): ProcessInfo[] {
    let out: string;
    try {
      out = execFileSync('ps', [...select, '-o', 'pid=,ppid=,pgid=,sess=,rss=,state=,lstart=,comm='], {
        encoding: 'utf8',
        env: { ...process.env, LC_ALL: 'C' },
      });
    } catch {
      return [];
    }
    const result: ProcessInfo[] = [];
    for (const line of out.split('\n')) {
      // lstart is five words: "Wed Nov 25 19:59:34 2026"
      const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+\s+\S+\s+\d+\s+[\d:]+\s+\d+)\s+(.*)$/.exec(
        line,
      );
      if (!m) continue;
      result.push({
        pid: Number(m[1]),
        ppid: Number(m[2]),
        pgid: Number(m[3]),
        sid: Number(m[4]),
        rssBytes: Number(m[5]) * 1024,
        state: (m[6] ?? '?').charAt(0),
        start: Math.floor(Date.parse(m[7] ?? '') / 1000),
        comm: m[8] ?? '',
      });
    }
    return result;
  }
}
