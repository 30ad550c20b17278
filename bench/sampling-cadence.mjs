// What a holder's peak sampling costs, and what it records, at several cadences (docs/memory.md, "What
// sampling costs"). For each fixture and schedule: the CPU time of this process (utime + stime, which is
// all a seq-test process adds for sampling: the tree walk and the smaps_rollup reads) while PeakRecorder
// samples the fixture's tree, and the peak it recorded; runs interleaved, schedules in rotating order.
//
//   node bench/sampling-cadence.mjs [--runs 5] [--fixtures heavy-vitest,spike,late-spike,heavy-pytest]
//                                   [--schedules a,b]
//                                   [--quick]
//
// --quick (a smoke run): one run of the spike fixture under no sampling, the 50 ms one and the CLI's.
// SPIKE_MS (default 400) sets the spike fixtures' length.
//
// The reference peak is the largest any schedule recorded for that fixture (the 50 ms one, mostly).
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { PeakRecorder } from '@seq-test/core/internal';

const ROOT = join(import.meta.dirname, '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : process.argv[i + 1];
};
const QUICK = process.argv.includes('--quick');
const RUNS = Number(arg('--runs', QUICK ? 1 : 5));
const FIXTURES = {
  'heavy-vitest': {
    argv: [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run'],
    cwd: join(ROOT, 'bench', 'fixtures', 'heavy-vitest'),
    env: { HEAVY_CHILD_S: '1' },
  },
  // 400 ms of 200 MiB more, 5 s in (inside every schedule's 250 ms phase) or 12 s in (past it).
  spike: { argv: [join(ROOT, 'bench', 'fixtures', 'memory-spike', 'spike.mjs')], cwd: ROOT, env: {} },
  'late-spike': {
    argv: [join(ROOT, 'bench', 'fixtures', 'memory-spike', 'spike.mjs')],
    cwd: ROOT,
    env: { SPIKE_AT_MS: '12000', SPIKE_TOTAL_MS: '13000' },
  },
  // A 1.3 GiB tree of five Python processes (pytest and four xdist workers, each test 300 MiB): needs
  // /usr/bin/python3 with pytest-xdist. Its cache stays off so the fixture directory is not written to.
  'heavy-pytest': {
    program: '/usr/bin/python3',
    argv: ['-m', 'pytest', '-q', '-n', '4', '-p', 'no:cacheprovider'],
    cwd: join(ROOT, 'bench', 'fixtures', 'heavy-pytest'),
    env: { PYTHONDONTWRITEBYTECODE: '1' },
  },
};
const SCHEDULES = {
  none: null,
  '50 ms': [{ untilMs: Infinity, everyMs: 50 }],
  '250 ms (before)': [
    { untilMs: 2000, everyMs: 50 },
    { untilMs: Infinity, everyMs: 250 },
  ],
  '250 ms to 10 s then 500 ms': [
    { untilMs: 2000, everyMs: 50 },
    { untilMs: 10_000, everyMs: 250 },
    { untilMs: Infinity, everyMs: 500 },
  ],
  '250 ms to 10 s then 1 s': [
    { untilMs: 2000, everyMs: 50 },
    { untilMs: 10_000, everyMs: 250 },
    { untilMs: Infinity, everyMs: 1000 },
  ],
  '100 ms to 2 s then 500 ms': [
    { untilMs: 2000, everyMs: 100 },
    { untilMs: Infinity, everyMs: 500 },
  ],
  '500 ms after 2 s': [
    { untilMs: 2000, everyMs: 50 },
    { untilMs: Infinity, everyMs: 500 },
  ],
};

async function once(fixture, schedule) {
  const before = process.cpuUsage();
  const child = spawn(fixture.program ?? process.execPath, fixture.argv, {
    cwd: fixture.cwd,
    env: { ...process.env, ...fixture.env },
    stdio: 'ignore',
  });
  const recorder = schedule ? new PeakRecorder(child.pid, schedule) : undefined;
  const began = performance.now();
  const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)));
  recorder?.cancel();
  const cpu = process.cpuUsage(before);
  return {
    code,
    wallMs: performance.now() - began,
    cpuMs: (cpu.user + cpu.system) / 1000,
    sysMs: cpu.system / 1000,
    peakMiB: recorder ? recorder.peakBytes / 1024 ** 2 : null,
    reads: recorder ? recorder.pssReads : 0,
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const names = arg(
  '--schedules',
  QUICK ? 'none,50 ms,100 ms to 2 s then 500 ms' : Object.keys(SCHEDULES).join(','),
).split(',');
for (const fixtureName of arg('--fixtures', QUICK ? 'spike' : 'heavy-vitest,spike,late-spike').split(',')) {
  const fixture = FIXTURES[fixtureName];
  const results = Object.fromEntries(names.map((n) => [n, []]));
  const loads = [];
  for (let run = 0; run < RUNS; run++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + run) % names.length];
      loads.push(loadavg()[0]);
      const r = await once(fixture, SCHEDULES[name]);
      if (r.code !== 0) {
        console.error(`${fixtureName} ${name}: exit ${r.code}`);
        process.exitCode = 1; // a figure of a failed run is no figure
      }
      results[name].push(r);
    }
  }
  const reference = Math.max(...Object.values(results).flatMap((rs) => rs.map((r) => r.peakMiB ?? 0)));
  console.log(
    `\n${fixtureName}: ${RUNS} runs per schedule, interleaved; load average (1 min) ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}; reference peak ${reference.toFixed(0)} MiB`,
  );
  console.log(
    'schedule | CPU ms (median, min-max) | of which kernel | smaps_rollup reads (one per process) | wall s | peak MiB (min-max) | peak vs reference (worst)',
  );
  for (const name of names) {
    const rs = results[name];
    const cpu = rs.map((r) => r.cpuMs);
    const peaks = rs.map((r) => r.peakMiB).filter((p) => p !== null);
    console.log(
      [
        name,
        `${median(cpu).toFixed(0)} (${Math.min(...cpu).toFixed(0)}-${Math.max(...cpu).toFixed(0)})`,
        median(rs.map((r) => r.sysMs)).toFixed(0),
        median(rs.map((r) => r.reads)).toFixed(0),
        median(rs.map((r) => r.wallMs / 1000)).toFixed(1),
        peaks.length
          ? `${median(peaks).toFixed(0)} (${Math.min(...peaks).toFixed(0)}-${Math.max(...peaks).toFixed(0)})`
          : '-',
        peaks.length ? `${((Math.min(...peaks) / reference - 1) * 100).toFixed(1)} %` : '-',
      ].join(' | '),
    );
  }
}
