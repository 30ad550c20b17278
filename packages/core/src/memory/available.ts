import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * How much memory can still be used before something gets killed or swapped: the kernel's MemAvailable
 * (/proc/meminfo), and, when this process runs inside a memory cgroup with a limit (a container, a
 * systemd slice with MemoryMax, the benchmark's small machine), what is left below that limit — the
 * smaller of the two. Page cache that could be dropped (inactive file pages) counts as available in
 * both, as the kernel's own figure does.
 */
export interface AvailableMemory {
  bytes: number;
  /** What bounds it: "MemAvailable", "cgroup v1 /path", "cgroup v2 /path". */
  source: string;
  /** The total it is part of (MemTotal or the cgroup limit), for the default reserve. */
  totalBytes: number;
}

const NO_LIMIT = 2 ** 60;

export function availableMemory(): AvailableMemory | undefined {
  if (process.platform !== 'linux') return undefined;
  const meminfo = read('/proc/meminfo');
  const available = kb(meminfo, 'MemAvailable');
  const total = kb(meminfo, 'MemTotal');
  if (available === undefined || total === undefined) return undefined;
  let best: AvailableMemory = { bytes: available, source: 'MemAvailable', totalBytes: total };
  for (const limit of cgroupLimits()) {
    if (limit.headroom < best.bytes) best = { bytes: limit.headroom, source: limit.source, totalBytes: limit.limit };
  }
  return best;
}

interface CgroupLimit {
  limit: number;
  headroom: number;
  source: string;
}

/** Limits of our memory cgroup and its ancestors (a parent's limit binds its children too). */
function cgroupLimits(): CgroupLimit[] {
  const result: CgroupLimit[] = [];
  const text = read('/proc/self/cgroup') ?? '';
  for (const line of text.split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (controllers?.split(',').includes('memory')) {
      for (let dir = path; ; dir = dirname(dir)) {
        const base = join('/sys/fs/cgroup/memory', dir);
        const limit = number(read(join(base, 'memory.limit_in_bytes')));
        const usage = number(read(join(base, 'memory.usage_in_bytes')));
        if (limit !== undefined && usage !== undefined && limit < NO_LIMIT) {
          const inactive = statField(read(join(base, 'memory.stat')), 'total_inactive_file') ?? 0;
          result.push({ limit, headroom: Math.max(0, limit - (usage - inactive)), source: `cgroup v1 ${dir}` });
        }
        if (dir === '/' || dir === '.' || dir === '') break;
      }
    } else if (controllers === '') {
      for (let dir = path; ; dir = dirname(dir)) {
        const base = join('/sys/fs/cgroup', dir);
        const max = read(join(base, 'memory.max'))?.trim();
        const current = number(read(join(base, 'memory.current')));
        const limit = max === undefined || max === 'max' ? undefined : number(max);
        if (limit !== undefined && current !== undefined && limit < NO_LIMIT) {
          const inactive = statField(read(join(base, 'memory.stat')), 'inactive_file') ?? 0;
          result.push({ limit, headroom: Math.max(0, limit - (current - inactive)), source: `cgroup v2 ${dir}` });
        }
        if (dir === '/' || dir === '.' || dir === '') break;
      }
    }
  }
  return result;
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function kb(meminfo: string | undefined, field: string): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(meminfo ?? '');
  return match ? Number(match[1]) * 1024 : undefined;
}

function number(text: string | undefined): number | undefined {
  const n = Number(text?.trim());
  return text !== undefined && text.trim() !== '' && Number.isFinite(n) && n >= 0 ? n : undefined;
}

function statField(stat: string | undefined, field: string): number | undefined {
  const match = new RegExp(`^${field} (\\d+)$`, 'm').exec(stat ?? '');
  return match ? Number(match[1]) : undefined;
}
