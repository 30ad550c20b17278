import { readdirSync } from 'node:fs';
import { freemem, loadavg, totalmem } from 'node:os';
import { formatBytes } from '@seq-test/core/internal';

/** The machine-wide line of the monitor (the old monitor-queue.sh showed memory, load and process counts). */
export interface SystemSample {
  totalBytes: number;
  /** What the kernel can hand out without swapping (Linux: MemAvailable). */
  availableBytes: number;
  load: [number, number, number];
  /** Processes on the machine; null where counting them would cost a process-table sweep (macOS). */
  processes: number | null;
}

export function sampleSystem(): SystemSample {
  const [one = 0, five = 0, fifteen = 0] = loadavg();
  return { totalBytes: totalmem(), availableBytes: freemem(), load: [one, five, fifteen], processes: countProcesses() };
}

function countProcesses(): number | null {
  if (process.platform !== 'linux') return null;
  try {
    // One readdir, no per-process reads: cheap enough for every refresh.
    return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).length;
  } catch {
    return null;
  }
}

export function describeSystem(s: SystemSample): string {
  const used = Math.max(s.totalBytes - s.availableBytes, 0);
  const percent = s.totalBytes > 0 ? Math.round((used / s.totalBytes) * 100) : 0;
  const parts = [
    `memory ${formatBytes(used)} used (${percent}%), ${formatBytes(s.availableBytes)} available of ${formatBytes(s.totalBytes)}`,
    `load ${s.load.map((n) => n.toFixed(2)).join(' ')}`,
  ];
  if (s.processes !== null) parts.push(`${s.processes} processes`);
  return parts.join(' · ');
}
