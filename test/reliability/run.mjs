// The reliability suite: every figure is an exact count, printed as a table. Any failing count makes the
// exit status non-zero. Only an explicit --write-docs (a developer's run, never CI's) rewrites
// docs/reliability.md with the table.
//
//   npm run test:reliability                  (= node test/reliability/run.mjs; what CI runs)
//   npm run test:reliability -- --write-docs  (then commit docs/reliability.md)
//   node test/reliability/run.mjs --only bad-input
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'packages', 'cli', 'dist', 'bin.js');
const MARKER_ENV = 'SEQ_TEST_TEST_MARKER';
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const work = mkdtempSync(join(tmpdir(), 'seq-test-reliability-'));
const marker = randomUUID();
const started = new Set();

function baseEnv(extra = {}) {
  const env = { ...process.env, [MARKER_ENV]: marker, SEQ_TEST_STATE_DIR: join(work, 'state') };
  delete env.SEQ_TEST_TOKEN;
  delete env.SEQ_TEST_KEY;
  return { ...env, ...extra };
}

/** Starts seq-test; resolves with code, signal and output when the process exits. */
function cli(argv, options = {}) {
  return proc(process.execPath, [CLI, ...argv], options);
}

/** Starts any program the way cli() starts seq-test (tracked, output kept, killed when it hangs). */
function proc(file, argv, { env = baseEnv(), timeoutMs = 60_000 } = {}) {
  const child = spawn(file, argv, { env, cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child.pid);
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      started.delete(child.pid);
      resolve({ code, signal, hung, ...out });
    }),
  );
  return { child, out, exited };
}

/** Live processes carrying this suite's marker (everything it started, at any depth), or another marker. */
function ours(withMarker = marker) {
  const pids = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (readFileSync(`/proc/${name}/environ`, 'latin1').includes(`${MARKER_ENV}=${withMarker}`))
        pids.push(Number(name));
    } catch {}
  }
  return pids;
}

function endOurs(withMarker = marker) {
  const left = ours(withMarker);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  return left.length;
}

const alive = (pid) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
};

async function waitFor(probe, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = probe();
    if (value) return value;
    await sleep(20);
  }
  return undefined;
}

const keyDir = (stateDir, key) => join(stateDir, `q-${createHash('sha256').update(key).digest('hex').slice(0, 24)}`);

function ticketsLeft(stateDir) {
  let count = 0;
  const visit = (dir) => {
    if (!existsSync(dir)) return;
    for (const q of readdirSync(dir)) {
      const t = join(dir, q, 'tickets');
      if (existsSync(t)) count += readdirSync(t).filter((n) => /^\d{12}-/.test(n)).length;
    }
  };
  visit(stateDir);
  return count;
}

// --- scenarios ------------------------------------------------------------------------------------------

const figures = [];
const record = (scenario, name, value, expected) =>
  figures.push({ scenario, name, value, expected, ok: value === expected });

/**
 * 50 contenders with random 10–100 ms jobs. FIFO means served in arrival order, and ticket numbers cannot
 * stand in for that order (they start again at 1 whenever the queue drains). So a holder keeps the queue from
 * draining (a gate) while the contenders join one at a time, each only once the previous one's ticket is in
 * the queue (its arrival); then the gate opens, and every job served out of arrival order is a violation.
 */
async function contenders() {
  const scenario = '50 contenders, random 10–100 ms jobs';
  const key = `contenders-${marker}`;
  const stateDir = join(work, 'state');
  const log = join(work, 'contenders.log');
  const gate = join(work, 'contenders.gate');
  const env = (extra = {}) => baseEnv({ SEQ_TEST_KEY: key, ...extra });
  const queued = () => {
    const dir = join(keyDir(stateDir, key), 'tickets');
    return existsSync(dir) ? readdirSync(dir).filter((n) => /^\d{12}-/.test(n)).length : 0;
  };
  const holder = cli(['run', '--quiet', '--', 'bash', '-c', `until [ -e ${gate} ]; do sleep 0.01; done`], {
    env: env(),
    timeoutMs: 600_000,
  });
  // Generous bounds: process start-up on a loaded machine. They wait for events, not for time.
  let joined = (await waitFor(() => queued() === 1, 60_000)) ? 0 : -1;
  const runs = [];
  for (let arrival = 0; joined === arrival && arrival < 50; arrival++) {
    const ms = (10 + Math.floor(Math.random() * 90)) / 1000;
    const job = `echo "S ${arrival} $(date +%s%N)" >> ${log}; sleep ${ms}; echo "E ${arrival} $(date +%s%N)" >> ${log}`;
    runs.push(cli(['run', '--quiet', '--', 'bash', '-c', job], { env: env(), timeoutMs: 600_000 }).exited);
    if (await waitFor(() => queued() === arrival + 2, 60_000)) joined++;
  }
  writeFileSync(gate, '');
  const results = await Promise.all([holder.exited, ...runs]);
  const lines = existsSync(log)
    ? readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
    : [];
  let open = 0;
  let overlaps = 0;
  const served = [];
  for (const [kind, arrival] of lines) {
    open += kind === 'S' ? 1 : -1;
    if (open > 1) overlaps++;
    if (kind === 'S') served.push(Number(arrival));
  }
  const fifo = served.filter((arrival, position) => arrival !== position).length;
  const lost = results.filter((r) => r.code !== 0).length + (50 - served.length);
  record(scenario, 'contenders that did not join while the queue was held', 50 - joined, 0);
  record(scenario, 'overlapping holders', overlaps, 0);
  record(scenario, 'served out of arrival order', fifo, 0);
  record(scenario, 'lost runs', lost, 0);
  record(scenario, 'leftover processes', ours().length, 0);
  record(scenario, 'leftover tickets', ticketsLeft(stateDir), 0);
}

/**
 * The race the headline benchmark found (two holders of one slot): rounds of four simultaneous runs beside
 * two CPU burners, so that listings interleave with other contenders' choosing. Any round whose stamps are
 * not S,E,S,E,... had two holders at once.
 */
async function bakeryStress() {
  const rounds = 30;
  const burners = [0, 1].map(() => {
    const b = spawn('sh', ['-c', 'while :; do :; done'], { env: baseEnv(), stdio: 'ignore' });
    started.add(b.pid);
    return b;
  });
  let overlapping = 0;
  let failed = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      const log = join(work, `stress-${round}.log`);
      const env = baseEnv({ SEQ_TEST_KEY: `stress-${marker}` });
      const runs = [0, 1, 2, 3].map(
        () =>
          cli(['run', '--quiet', '--', 'sh', '-c', `echo S >> ${log}; sleep 0.1; echo E >> ${log}`], { env }).exited,
      );
      const results = await Promise.all(runs);
      failed += results.filter((r) => r.code !== 0).length;
      const stamps = existsSync(log) ? readFileSync(log, 'utf8').replace(/\n/g, '') : '';
      if (stamps !== 'SESESESE') overlapping++;
    }
  } finally {
    for (const b of burners) b.kill('SIGKILL');
  }
  const scenario = `${rounds} rounds of 4 simultaneous runs beside 2 CPU burners`;
  record(scenario, 'rounds with two holders at once', overlapping, 0);
  record(scenario, 'failed runs', failed, 0);
}

async function killedHolders() {
  const signals = ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP'];
  let stuck = 0;
  let leftovers = 0;
  let tickets = 0;
  for (let round = 0; round < 20; round++) {
    const signal = signals[round % signals.length];
    const key = `killed-${round}-${marker}`;
    const env = baseEnv({ SEQ_TEST_KEY: key });
    const pids = join(work, `killed-${round}.pids`);
    const ran = join(work, `killed-${round}.ran`);
    const holder = cli(
      [
        'run',
        '--quiet',
        '--grace',
        '1',
        '--',
        'bash',
        '-c',
        `sleep 300 & echo $! >> ${pids}; setsid sleep 300 & echo $! >> ${pids}; wait`,
      ],
      { env },
    );
    await waitFor(() => existsSync(pids) && readFileSync(pids, 'utf8').trim().split('\n').length === 2);
    const waiter = cli(['run', '--quiet', '--', 'touch', ran], { env });
    await sleep(100 + Math.random() * 700);
    holder.child.kill(signal);
    const result = await Promise.race([waiter.exited, sleep(20_000).then(() => undefined)]);
    if (result?.code !== 0 || !existsSync(ran)) stuck++;
    await holder.exited;
    const left = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
    await waitFor(() => left.every((pid) => !alive(pid)), 5000);
    leftovers += left.filter(alive).length;
    tickets += ticketsLeft(join(work, 'state'));
    endOurs();
  }
  const scenario = '20 holders killed at random moments (SIGKILL, SIGTERM, SIGINT, SIGHUP, 5 each)';
  record(scenario, 'queue did not move on', stuck, 0);
  record(scenario, 'leftover processes of killed holders', leftovers, 0);
  record(scenario, 'tickets left behind', tickets, 0);
}

/** The escapee kinds, each writing its pid to a file. */
const ESCAPEES = {
  'background child': (f) => `sleep 300 & echo $! > ${f}`,
  'setsid child': (f) => `setsid sh -c 'echo $$ > ${f}; exec sleep 300' &`,
  'double fork': (f) => `( ( sleep 300 & echo $! > ${f} ) & )`,
  nohup: (f) => `nohup sleep 300 > /dev/null 2>&1 & echo $! > ${f}`,
  'setsid + env -i + double fork': (f) => `env -i /usr/bin/setsid /bin/sh -c '( /bin/sleep 300 & echo $! > ${f} ) &' &`,
};

async function escapees() {
  let missed = 0;
  let total = 0;
  let decoysKilled = 0;
  let decoysTotal = 0;
  for (const mode of ['linger', 'timeout']) {
    const files = Object.keys(ESCAPEES).map((_, i) => join(work, `esc-${mode}-${i}.pid`));
    const script = `${Object.values(ESCAPEES)
      .map((make, i) => make(files[i]))
      .join('\n')}\n${mode === 'timeout' ? 'sleep 300' : 'sleep 0.5'}`;
    // Decoys: the same commands, started by us outside seq-test, in the same directory.
    spawn('setsid', ['sh', '-c', 'sleep 300 & sleep 300 & nohup sleep 300 >/dev/null 2>&1 & wait'], {
      cwd: work,
      env: { ...process.env, [MARKER_ENV]: `decoy-${marker}` },
      stdio: 'ignore',
      detached: true,
    });
    await sleep(200);
    const decoyPids = ours(`decoy-${marker}`);
    const argv =
      mode === 'timeout'
        ? ['exec', '--timeout', '1.5', '--grace', '1', '--', 'sh', '-c', script]
        : ['exec', '--linger', '0.5', '--grace', '1', '--', 'sh', '-c', script];
    await cli(argv).exited;
    for (const file of files) {
      total++;
      const pid = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0;
      if (!pid || alive(pid)) missed++;
    }
    decoysTotal += decoyPids.length;
    decoysKilled += decoyPids.filter((pid) => !alive(pid)).length;
    // The decoys still marked as ours, found again now: a recorded pid may be free by now and a stranger's
    // (setsid(1), a session leader here, forks, and the process `decoy` names exits at once).
    endOurs(`decoy-${marker}`);
    endOurs();
  }
  const scenario = `escapees (${Object.keys(ESCAPEES).join(', ')}), after linger and on timeout`;
  record(scenario, `escapees not reaped (of ${total})`, missed, 0);
  record(scenario, `decoys not started by seq-test that were signalled (of ${decoysTotal})`, decoysKilled, 0);
  record(scenario, 'rounds without decoys (the check would prove nothing)', decoysTotal >= 8 ? 0 : 1, 0);
}

/** 100 corrupt or hostile state dirs; each must end in success (with a warning) or a one-line refusal. */
async function hostileStateDirs() {
  const cases = [];
  const deadToken = () =>
    `${4_000_000 + Math.floor(Math.random() * 100_000)}.${Math.floor(Math.random() * 1e6)}.${randomBytes(6).toString('hex')}`;
  const ticketName = (n, token = deadToken()) => `${String(n).padStart(12, '0')}-${token}.json`;
  const validTicket = (token) =>
    JSON.stringify({
      v: 1,
      token,
      pid: Number(token.split('.')[0]),
      start: Number(token.split('.')[1]),
      boot: '',
      number: 1,
      slots: 1,
      key: 'k',
      command: 'x',
      cwd: '/',
      enqueuedAt: 0,
      startedAt: null,
      impl: 'node',
    });
  const inTickets = (label, make) => cases.push({ label, prepare: (q) => make(join(q, 'tickets')) });
  for (let i = 0; i < 26; i++)
    inTickets(`garbage bytes #${i}`, (t) => writeFileSync(join(t, ticketName(i + 1)), randomBytes(1 + i * 37)));
  for (let i = 0; i < 20; i++) {
    inTickets(`truncated ticket #${i}`, (t) => {
      const token = deadToken();
      const text = validTicket(token);
      writeFileSync(join(t, ticketName(i + 1, token)), text.slice(0, Math.floor((text.length * i) / 20)));
    });
  }
  for (const v of [0, -1, 2, 99, 1.5, '1', null, 'x', 1e9, true]) {
    inTickets(`version ${JSON.stringify(v)}`, (t) => {
      const token = deadToken();
      writeFileSync(join(t, ticketName(1, token)), JSON.stringify({ ...JSON.parse(validTicket(token)), v }));
    });
  }
  for (const [label, content] of [
    ['empty file', ''],
    ['JSON array', '[1,2,3]'],
    ['JSON string', '"ticket"'],
    ['pid as string', JSON.stringify({ v: 1, token: 'x', pid: '1', start: 1 })],
    ['negative pid', JSON.stringify({ v: 1, token: 'x', pid: -5, start: 1 })],
    ['1 MB of JSON whitespace', `${' '.repeat(1 << 20)}{}`],
    ['deeply nested JSON', `${'['.repeat(5000)}${']'.repeat(5000)}`],
    ['NUL bytes', '\0\0\0\0'],
    ['UTF-16 BOM', '\ufeff{"v":1}'],
    ['slots 0 and NaN start', JSON.stringify({ v: 1, token: 'x', pid: 1, start: 'NaN', slots: 0 })],
  ]) {
    inTickets(label, (t) => writeFileSync(join(t, ticketName(1)), content));
  }
  for (let i = 0; i < 11; i++)
    inTickets(`foreign file name #${i}`, (t) => writeFileSync(join(t, `notes-${i}.txt`), 'hello'));
  inTickets('directory named like a ticket', (t) => mkdirSync(join(t, ticketName(1))));
  inTickets('symlink ticket to /etc/passwd', (t) => symlinkSync('/etc/passwd', join(t, ticketName(1))));
  inTickets('dangling symlink ticket', (t) => symlinkSync(join(t, 'nowhere'), join(t, ticketName(1))));
  inTickets('ticket with mode 000', (t) => {
    const f = join(t, ticketName(1));
    writeFileSync(f, '{}');
    chmodSync(f, 0);
  });
  inTickets('stale temp file', (t) => writeFileSync(join(t, '.tmp-0123456789abcdef'), 'half'));
  inTickets('ticket number overflow', (t) => writeFileSync(join(t, `999999999999-${deadToken()}.json`), '{}'));
  inTickets('number zero', (t) => writeFileSync(join(t, ticketName(0)), '{}'));
  inTickets('many dead tickets (200)', (t) => {
    for (let i = 1; i <= 200; i++) writeFileSync(join(t, ticketName(i)), '{}');
  });
  const inQueue = (label, make) => cases.push({ label, prepare: make });
  inQueue('garbage choosing marker', (q) => writeFileSync(join(q, 'choosing', `${deadToken()}.json`), randomBytes(50)));
  inQueue('foreign file in choosing/', (q) => writeFileSync(join(q, 'choosing', 'junk'), 'x'));
  inQueue('tickets/ is a file', (q) => {
    rmSync(join(q, 'tickets'), { recursive: true });
    writeFileSync(join(q, 'tickets'), 'not a dir');
  });
  inQueue('choosing/ is a file', (q) => {
    rmSync(join(q, 'choosing'), { recursive: true });
    writeFileSync(join(q, 'choosing'), 'not a dir');
  });
  inQueue('queue dir is a file', (q) => {
    rmSync(q, { recursive: true });
    writeFileSync(q, 'not a dir');
  });
  inQueue('key file is a directory', (q) => mkdirSync(join(q, 'key')));
  inQueue('nested/ is a file', (q) => writeFileSync(join(q, 'nested'), 'x'));
  inQueue('tickets/ is a symlink to /tmp', (q) => {
    rmSync(join(q, 'tickets'), { recursive: true });
    symlinkSync('/tmp', join(q, 'tickets'));
  });
  inQueue('tickets/ mode 000', (q) => chmodSync(join(q, 'tickets'), 0));
  const topLevel = (label, make) => cases.push({ label, top: make });
  topLevel('state dir is a symlink', (s) => {
    mkdirSync(`${s}-real`, { mode: 0o700 });
    symlinkSync(`${s}-real`, s);
  });
  topLevel('state dir mode 0777', (s) => {
    mkdirSync(s);
    chmodSync(s, 0o777);
  });
  topLevel('state dir mode 0770', (s) => {
    mkdirSync(s);
    chmodSync(s, 0o770);
  });
  topLevel('state dir owned by uid 65534', (s) => {
    mkdirSync(s, { mode: 0o700 });
    chownSync(s, 65534, 65534);
  });
  topLevel('state dir is a file', (s) => writeFileSync(s, 'x'));
  topLevel('state dir parent is a file', (s) => {
    writeFileSync(join(dirname(s), 'file'), 'x');
    return join(dirname(s), 'file', 'state');
  });

  let crashes = 0;
  let hangs = 0;
  let unclear = 0;
  let total = 0;
  for (const [index, c] of cases.slice(0, Math.max(100, cases.length)).entries()) {
    total++;
    const base = join(work, `hostile-${index}`);
    mkdirSync(base, { recursive: true });
    let stateDir = join(base, 'state');
    const key = `hostile-${index}`;
    if (c.top) stateDir = c.top(stateDir) ?? stateDir;
    else {
      const q = keyDir(stateDir, key);
      for (const d of ['tickets', 'choosing']) mkdirSync(join(q, d), { recursive: true, mode: 0o700 });
      chmodSync(stateDir, 0o700);
      c.prepare(q);
    }
    const result = await cli(['run', '--wait-timeout', '15', '--', 'true'], {
      env: baseEnv({ SEQ_TEST_STATE_DIR: stateDir, SEQ_TEST_KEY: key }),
      timeoutMs: 30_000,
    }).exited;
    const errorLines = result.stderr.split('\n').filter((l) => l.startsWith('seq-test: error:'));
    if (result.hung) hangs++;
    else if (/internal error|at .*\.js:\d+/.test(result.stderr)) {
      crashes++;
      console.error(`hostile case "${c.label}": crashed\n${result.stderr}`);
    } else if (result.code === 0) {
      // fine: survived (a warning may or may not be due)
    } else if (result.code === 125 && errorLines.length === 1 && result.stderr.trim().split('\n').length === 1) {
      // fine: a clear one-line refusal
    } else {
      unclear++;
      console.error(`hostile case "${c.label}": exit ${result.code}\n${result.stderr}`);
    }
    // Undo the mode-000 case so the temp dir can be removed; lstat first: chmod follows symlinks, and one
    // case makes tickets/ a symlink to /tmp.
    try {
      const tickets = join(keyDir(stateDir, key), 'tickets');
      if (lstatSync(tickets).isDirectory()) chmodSync(tickets, 0o700);
    } catch {}
    endOurs();
  }
  const scenario = `${total} corrupt or hostile state-dir cases (garbage, truncated, versions, symlinks, modes, owners, wrong file types)`;
  record(scenario, 'crashes', crashes, 0);
  record(scenario, 'hangs', hangs, 0);
  record(scenario, 'neither success nor a one-line refusal', unclear, 0);
}

/** Bad invocations: one-line error, the documented exit code, no process and no ticket left. */
async function badInput() {
  const cases = [
    [['exec', '--bogus', '--', 'true'], 125],
    [['run', '--bogus', '--', 'true'], 125],
    [['--bogus'], 125],
    [['nonsense-command'], 125],
    [['exec'], 125],
    [['run'], 125],
    [['exec', '--'], 125],
    [['run', '--'], 125],
    [['exec', '--timeout', '-1', '--', 'true'], 125],
    [['exec', '--timeout', 'NaN', '--', 'true'], 125],
    [['exec', '--timeout', '', '--', 'true'], 125],
    [['exec', '--timeout', 'abc', '--', 'true'], 125],
    [['exec', '--timeout', '1e3x', '--', 'true'], 125],
    [['exec', '--timeout', 'Infinity', '--', 'true'], 125],
    [['exec', '--timeout'], 125],
    [['exec', '--grace', '-5', '--', 'true'], 125],
    [['exec', '--linger', 'soon', '--', 'true'], 125],
    [['exec', '--retry-delay', '-1', '--', 'true'], 125],
    [['exec', '--kill-signal', 'SIGFOO', '--', 'true'], 125],
    [['exec', '--kill-signal', '999', '--', 'true'], 125],
    [['exec', '--kill-signal', '', '--', 'true'], 125],
    [['exec', '--kill-signal', '-9', '--', 'true'], 125],
    [['exec', '--max-memory', 'lots', '--', 'true'], 125],
    [['exec', '--max-memory', '0', '--', 'true'], 125],
    [['exec', '--max-memory', '-1G', '--', 'true'], 125],
    [['exec', '--max-memory', '5X', '--', 'true'], 125],
    [['exec', '--retry', '-1', '--', 'true'], 125],
    [['exec', '--retry', '1.5', '--', 'true'], 125],
    [['exec', '--retry', 'two', '--', 'true'], 125],
    [['exec', '--log', '/nonexistent-dir/x.log', '--', 'true'], 125],
    [['exec', '--log', '', '--', 'true'], 125],
    [['run', '--slots', '0', '--', 'true'], 125],
    [['run', '--slots', 'many', '--', 'true'], 125],
    [['run', '--slots', '-2', '--', 'true'], 125],
    [['run', '--wait-timeout', 'x', '--', 'true'], 125],
    [['run', '--wait-timeout', '-3', '--', 'true'], 125],
    [['run', '--key', '', '--', 'true'], 125],
    [['run', '--timeout', 'x', '--', 'true'], 125],
    [['status', '--bogus'], 125],
    [['reap', '--grace', 'x'], 125],
    [['exec', '--', 'definitely-not-a-command-xyz'], 127],
    [['run', '--', 'definitely-not-a-command-xyz'], 127],
    [['exec', '--', './missing-script.sh'], 127],
    [['exec', '--', '/etc/passwd'], 126],
    [['run', '--', '/etc/passwd'], 126],
    [['exec', '--', '/tmp'], 126],
    [['exec', '--', ''], 125],
  ];
  let wrongCode = 0;
  let notOneLine = 0;
  let leftProcesses = 0;
  let leftTickets = 0;
  for (const [argv, expected] of cases) {
    const stateDir = join(work, 'bad-input-state');
    const result = await cli(argv, {
      env: baseEnv({ SEQ_TEST_STATE_DIR: stateDir, SEQ_TEST_KEY: 'bad-input' }),
      timeoutMs: 30_000,
    }).exited;
    const lines = result.stderr.trim().split('\n').filter(Boolean);
    if (result.code !== expected) {
      wrongCode++;
      console.error(`bad input ${JSON.stringify(argv)}: exit ${result.code}, expected ${expected}\n${result.stderr}`);
    }
    if (lines.length !== 1 || !lines[0].startsWith('seq-test: error:')) {
      notOneLine++;
      console.error(`bad input ${JSON.stringify(argv)}: stderr is not one error line:\n${result.stderr}`);
    }
    leftProcesses += ours().length;
    leftTickets += ticketsLeft(stateDir);
    endOurs();
  }
  const scenario = `${cases.length} bad command lines`;
  record(scenario, 'wrong exit code', wrongCode, 0);
  record(scenario, 'not exactly one "seq-test: error:" line', notOneLine, 0);
  record(scenario, 'processes left running', leftProcesses, 0);
  record(scenario, 'tickets left behind', leftTickets, 0);
}

/** The Python lock (the pytest plugin's) joining like `seq-test run`: test/conformance/py_contender.py. */
const PY_CONTENDER = join(ROOT, 'test', 'conformance', 'py_contender.py');
const isRoot = process.getuid?.() === 0;
/** `unshare` options that give the command its own time namespace, boottime shifted by 1000 s. */
const TIME_NS = [...(isRoot ? [] : ['--user', '--map-root-user']), '--time', '--boottime', '1000'];
/** Each participant, run as `prefix` + its argv: the CLI and the Python lock. */
const participants = {
  cli: (argv) => [process.execPath, CLI, 'run', '--', ...argv],
  python: (argv) => ['python3', PY_CONTENDER, '--', ...argv],
};
const startTicks = (pid) => Number(readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ')[19]);

/**
 * Issue 13 items 2, 4, 5, 6 and 11, in both languages, the cases that need real privileges or real kernel
 * features: a state dir planted by another user (chown: root), a holder in another time namespace, a full
 * file system (a tmpfs in a private mount namespace), a writer whose rename is delayed (strace) while an
 * old-style reader removes its temp file by mtime, the ticket-number limit.
 */
async function lockHardening() {
  const scenario =
    'lock hardening, CLI and Python (planted state dirs, time namespaces, full disk, delayed rename, number limit)';
  const gate = (name) => join(work, `hardening-${name}`);

  // 1. A state dir planted by another user, as in the issue: a symlink to their directory holding a dead
  //    ticket, `nested` -> a directory of ours, `key` -> a file only we may read. Then a plain directory
  //    owned by another uid (root only: chown).
  let followed = 0;
  let notRefused = 0;
  {
    const victim = gate('victim');
    const dead = `4123456.1.${randomBytes(6).toString('hex')}`;
    mkdirSync(join(victim, dead), { recursive: true });
    writeFileSync(join(victim, dead, 'precious'), 'keep');
    writeFileSync(gate('secret'), 'SECRET-CONTENT', { mode: 0o600 });
    const theirs = gate('theirs');
    const q = keyDir(theirs, 'planted');
    mkdirSync(join(q, 'tickets'), { recursive: true });
    mkdirSync(join(q, 'choosing'));
    writeFileSync(join(q, 'tickets', `000000000001-${dead}.json`), '{}');
    symlinkSync(victim, join(q, 'nested'));
    symlinkSync(gate('secret'), join(q, 'key'));
    const planted = gate('planted-state');
    symlinkSync(theirs, planted);
    const owned = gate('owned-state');
    mkdirSync(owned, { mode: 0o700 });
    if (isRoot) {
      for (const path of [theirs, q, join(q, 'tickets'), join(q, 'choosing')]) chownSync(path, 65534, 65534);
      chownSync(owned, 65534, 65534);
    }
    const states = isRoot ? [planted, owned] : [planted];
    if (!isRoot)
      console.error('reliability: lock-hardening: not root, the state dir owned by another uid is not tried');
    for (const stateDir of states) {
      const env = baseEnv({ SEQ_TEST_STATE_DIR: stateDir, SEQ_TEST_KEY: 'planted' });
      const runs = [
        ...['status --all-keys', 'status', 'reap', 'reap --dry-run', 'monitor', 'run -- true'].map((a) =>
          cli(a.split(' '), { env }),
        ),
        proc('python3', [PY_CONTENDER, '--', 'true'], { env }),
      ];
      for (const { exited } of runs) {
        const r = await exited;
        if (r.stdout.includes('SECRET')) followed++;
        const why = stateDir === owned ? /belongs to user \S+ \(uid 65534\), not to you/ : /it is a symlink/;
        if (r.code !== 125 || !why.test(r.stderr) || !/export SEQ_TEST_STATE_DIR=\//.test(r.stderr)) {
          notRefused++;
          console.error(`lock-hardening: planted state dir ${stateDir}: exit ${r.code}\n${r.stderr}`);
        }
      }
    }
    if (!existsSync(join(victim, dead, 'precious'))) followed++;
  }
  record(scenario, 'commands that read or removed through a planted state dir', followed, 0);
  record(scenario, 'commands that did not refuse it with the owner and a safe fix', notRefused, 0);

  // 2. Time namespaces: a holder inside `unshare --time --boottime 1000` and waiters outside, then the other
  //    way round. A waiter that misjudges the holder dead ends its command and runs beside it.
  let overlaps = 0;
  let holdersEnded = 0;
  for (const [holderInside, lang] of [
    [true, 'cli'],
    [true, 'python'],
    [false, 'cli'],
    [false, 'python'],
  ]) {
    const key = `timens-${holderInside}-${lang}-${marker}`;
    const stateDir = join(work, 'state');
    const release = gate(`release-${key}`);
    const log = gate(`log-${key}`);
    const env = baseEnv({ SEQ_TEST_KEY: key });
    const wrap = (inside, argv) => (inside ? ['unshare', [...TIME_NS, ...argv]] : [argv[0], argv.slice(1)]);
    const holderArgv = participants.cli([
      'bash',
      '-c',
      `echo holder-start >> ${log}; while [ ! -e ${release} ]; do sleep 0.05; done; echo holder-end >> ${log}`,
    ]);
    const holder = proc(...wrap(holderInside, holderArgv), { env });
    await waitFor(() => existsSync(log));
    const waiter = proc(...wrap(!holderInside, participants[lang](['bash', '-c', `echo waiter >> ${log}`])), { env });
    await waitFor(() => /waiting/.test(waiter.out.stderr) || ticketsLeft(stateDir) >= 2);
    // Ten of the waiter's 100 ms liveness checks, and its reap grace: time to misjudge, were it to.
    await sleep(1500);
    const before = readFileSync(log, 'utf8');
    if (before.includes('waiter')) overlaps++;
    writeFileSync(release, '');
    const [h, w] = [await holder.exited, await waiter.exited];
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    if (h.code !== 0 || !lines.includes('holder-end')) holdersEnded++;
    if (w.code !== 0 || lines.join(' ') !== 'holder-start holder-end waiter') {
      console.error(
        `lock-hardening: time namespace ${holderInside ? 'holder' : 'waiter'} inside (${lang}): holder ${h.code}, waiter ${w.code}, log ${lines.join(' ')}\n${h.stderr}${w.stderr}`,
      );
      if (!before.includes('waiter')) overlaps += w.code === 0 ? 0 : 1;
    }
    endOurs();
  }
  record(scenario, 'runs beside a holder in another time namespace (of 4)', overlaps, 0);
  record(scenario, 'holders in another time namespace ended by a waiter (of 4)', holdersEnded, 0);

  // 3. A full file system: the state dir on a tmpfs filled to the last block (private mount namespace).
  let fullUnclear = 0;
  let fullLeft = 0;
  for (const lang of ['cli', 'python']) {
    const mnt = gate(`tmpfs-${lang}`);
    mkdirSync(mnt);
    const script =
      'mount -t tmpfs -o size=256k tmpfs "$0" && dd if=/dev/zero of="$0/fill" bs=4k 2>/dev/null; ' +
      '"$@"; rc=$?; echo "left $(find "$0/state" -name "*.json" -o -name ".tmp-*" | wc -l)" >&2; exit $rc';
    const unshare = isRoot ? ['-m'] : ['--user', '--map-root-user', '-m'];
    const { exited } = proc('unshare', [...unshare, 'sh', '-c', script, mnt, ...participants[lang](['true'])], {
      env: baseEnv({ SEQ_TEST_STATE_DIR: join(mnt, 'state'), SEQ_TEST_KEY: 'full' }),
    });
    const r = await exited;
    const lines = r.stderr.trim().split('\n');
    if (r.code !== 125 || lines.length !== 2 || !/^seq-test: error: cannot write .*\(ENOSPC\); /.test(lines[0])) {
      fullUnclear++;
      console.error(`lock-hardening: full disk (${lang}): exit ${r.code}\n${r.stderr}`);
    }
    if (lines.at(-1) !== 'left 0') fullLeft++;
  }
  record(scenario, 'full state dir: runs without one clear error line and exit 125 (of 2)', fullUnclear, 0);
  record(scenario, 'full state dir: runs that left a file behind (of 2)', fullLeft, 0);

  // 4. A writer whose rename is delayed 1.5 s (strace) while a reader of the old protocol revision, with a
  //    clock 9.5 s ahead, removes every temp file older than 0.5 s by its mtime.
  let crashed = 0;
  for (const lang of ['cli', 'python']) {
    const key = `slowrename-${lang}-${marker}`;
    const q = keyDir(join(work, 'state'), key);
    const ran = gate(`ran-${key}`);
    let stop = false;
    const oldReader = (async () => {
      while (!stop) {
        for (const d of ['tickets', 'choosing']) {
          for (const name of existsSync(join(q, d)) ? readdirSync(join(q, d)) : []) {
            const file = join(q, d, name);
            try {
              if (name.startsWith('.tmp-') && Date.now() - lstatSync(file).mtimeMs > 500) rmSync(file);
            } catch {}
          }
        }
        await sleep(20);
      }
    })();
    const renames = 'rename,renameat,renameat2';
    const traced = [
      '-f',
      '-qq',
      '-o',
      '/dev/null',
      '-e',
      `trace=${renames}`,
      '-e',
      `inject=${renames}:delay_enter=1500000:when=1`,
    ];
    const r = await proc('strace', [...traced, ...participants[lang](['touch', ran])], {
      env: baseEnv({ SEQ_TEST_KEY: key }),
    }).exited;
    stop = true;
    await oldReader;
    if (r.code !== 0 || !existsSync(ran) || /internal error|Traceback|ENOENT/.test(r.stderr)) {
      crashed++;
      console.error(`lock-hardening: delayed rename (${lang}): exit ${r.code}\n${r.stderr}`);
    }
  }
  record(scenario, 'writers that failed when an old reader removed their temp file (of 2)', crashed, 0);

  // 5. The ticket-number limit: a live ticket numbered 999999999999. Each participant must refuse at once.
  let spun = 0;
  for (const lang of ['cli', 'python']) {
    const key = `limit-${lang}-${marker}`;
    const q = keyDir(join(work, 'state'), key);
    mkdirSync(join(q, 'tickets'), { recursive: true, mode: 0o700 });
    mkdirSync(join(q, 'choosing'), { mode: 0o700 });
    const owner = proc('sleep', ['60']);
    const pid = owner.child.pid;
    writeFileSync(join(q, 'tickets', `999999999999-${pid}.${startTicks(pid)}.abcdef012345.json`), '{}');
    const [file, ...argv] = participants[lang](['true']);
    const r = await proc(file, argv, { env: baseEnv({ SEQ_TEST_KEY: key }), timeoutMs: 20_000 }).exited;
    if (r.hung || r.code !== 125 || !/used up its ticket numbers/.test(r.stderr)) {
      spun++;
      console.error(`lock-hardening: number limit (${lang}): exit ${r.code}${r.hung ? ' (hung)' : ''}\n${r.stderr}`);
    }
    owner.child.kill('SIGKILL');
    await owner.exited;
  }
  record(scenario, 'joiners at the ticket-number limit that did not refuse at once (of 2)', spun, 0);
  endOurs();
}

// --- main -----------------------------------------------------------------------------------------------

const scenarios = {
  contenders,
  'bakery-stress': bakeryStress,
  'killed-holders': killedHolders,
  escapees,
  'hostile-state-dirs': hostileStateDirs,
  'bad-input': badInput,
  'lock-hardening': lockHardening,
};
if (only && !(only in scenarios)) {
  console.error(`reliability: unknown scenario "${only}"; one of: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
const began = Date.now();
try {
  for (const [name, scenario] of Object.entries(scenarios)) {
    if (only && only !== name) continue;
    const t0 = Date.now();
    await scenario();
    console.error(`reliability: ${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
} finally {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  endOurs();
  rmSync(work, { recursive: true, force: true });
}

const table = [
  '| scenario | figure | count | expected |',
  '| --- | --- | --- | --- |',
  ...figures.map((f) => `| ${f.scenario} | ${f.name} | ${f.value} | ${f.expected}${f.ok ? '' : ' **FAILED**'} |`),
].join('\n');
console.log(table);
const failed = figures.filter((f) => !f.ok);
if (args.includes('--write-docs') && !only) {
  const doc = `# Reliability figures

Written by \`npm run test:reliability -- --write-docs\`, a developer's run. CI runs \`npm run test:reliability\`
on every change without rewriting this file; a count that differs from the expected one fails it. Every figure
is an exact count from real processes, real signals and real files. Last run: ${new Date().toISOString().slice(0, 10)}, ${((Date.now() - began) / 1000).toFixed(0)} s, Node ${process.version}, ${process.platform}.

${table}

How each is measured: \`test/reliability/run.mjs\` (one function per scenario). Processes are found by an
environment marker the suite gives everything it starts, and ended by pid; decoys are started by the suite
itself, outside seq-test, with the same commands and working directory.
`;
  const docPath = join(ROOT, 'docs', 'reliability.md');
  writeFileSync(docPath, doc);
  // In the repository's own format (aligned table columns), so that `npm run lint` passes as written.
  execFileSync(join(ROOT, 'node_modules', '.bin', 'biome'), ['format', '--write', docPath], { stdio: 'ignore' });
}
if (failed.length > 0) {
  console.error(`reliability: ${failed.length} figure(s) failed`);
  process.exit(1);
}
