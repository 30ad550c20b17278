"""`seq_subprocess.run`: a drop-in for `subprocess.run` that waits for, and on timeout ends, the whole tree.

Same arguments, same `CompletedProcess`, same exceptions (`CalledProcessError` with `check=True`,
`TimeoutExpired` with `timeout=`). The differences:

- The command runs in its own session (`start_new_session=True`, unless you pass `start_new_session` or
  `process_group` yourself), with a run token added to SEQ_TEST_TOKEN.
- The call returns when the command *and everything it started* has ended: descendants found through the
  /proc parent links, the command's session and process group, and the token (so a double-forked or
  setsid escapee that kept its environment is waited for too). `linger=<seconds>` bounds that wait: what is
  still running that long after the main process ended is ended (TERM, then KILL) and listed in the
  result's `leftovers` attribute. Default: wait for everything, bounded by `timeout`
  (or $SEQ_TEST_SUBPROCESS_LINGER seconds when set).
- On timeout, KeyboardInterrupt or any error while waiting, the whole tree gets SIGTERM, then SIGKILL
  after `kill_grace` seconds (default 1), instead of SIGKILL to the main process only.
- Calls are serialized: one at a time per process (a re-entrant threading lock) and, inside a seq-test
  run (a pytest session with the seq-test plugin, `seq-test run`, ...), one at a time across the
  processes of that run through the run's nested queue (docs/PROTOCOL.md). So a call waits while another
  process of the same run is inside seq_subprocess.run or a nested `seq-test run`: do not start a server
  that way and then talk to it from another call (start it with Popen, or pass `queue=False`).

Limits: a child that both clears its environment and leaves the session before we first see it is not
found. Commands run without a controlling terminal (their own session), so a command that prompts on
/dev/tty cannot. On Windows (unsupported) this is plain `subprocess.run`.
"""

import os
import subprocess
import threading
import time

import seq_test_lock as _lock

CompletedProcess = subprocess.CompletedProcess
CalledProcessError = subprocess.CalledProcessError
TimeoutExpired = subprocess.TimeoutExpired
PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STDOUT = subprocess.STDOUT

__all__ = [
    "run",
    "patch",
    "unpatch",
    "is_patched",
    "CompletedProcess",
    "CalledProcessError",
    "TimeoutExpired",
    "PIPE",
    "DEVNULL",
    "STDOUT",
]

# The genuine subprocess.run, even if this module is imported after the patch was applied.
_original_run = getattr(subprocess, "_seq_test_original_run", subprocess.run)

_call_lock = threading.RLock()

#: Key of the queue whose nested queue serializes calls across processes. The pytest plugin sets it to the
#: session's key; None means the protocol's default (SEQ_TEST_KEY, the git top-level, cwd).
session_key = None


def _reinit_after_fork():
    global _call_lock
    _call_lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


_TOKENLESS_AFTER_READS = 2  # as @seq-test/core's tracker: TOKENLESS_AFTER_READS


class _Tree(object):
    """Which processes belong to one call: same rules as @seq-test/core's RunTracker.

    Owned: started no earlier than the root, and in the root's session or process group (while that is
    witnessed to be the call's: _group_witnessed), or a child of an owned process, or carrying the call's
    token. Once owned, a process stays owned for its lifetime (pid + start time), so a child that later
    calls setsid or is re-parented is still recognised.
    """

    def __init__(self, root_pid, token):
        """`root_pid` None: the pid is unknown (an interrupt inside Popen()); the token alone decides."""
        self.table = _lock.process_table()
        self.root_pid = root_pid if root_pid is not None else -1
        self.token = token
        self.me = os.getpid()
        # The root is our child and we have not waited for it, so even if it already exited its entry (a
        # zombie) is still there, with its start time. Failing that, our own start bounds what can be ours.
        info = self.table.get(root_pid) if root_pid is not None else None
        self.root_known = info is not None
        if info is not None:
            self.root_start = info.start
        else:
            me = self.table.get(self.me)
            self.root_start = me.start if me is not None else 0
        self.owned = {}  # pid -> start
        # (pid, start) -> reads without the token. One is not proof (a process between fork and exec shows
        # its parent's environment, one inside execve an empty one): two, in different samples, are.
        self.tokenless = {}
        if info is not None and not info.gone:
            self.owned[root_pid] = info.start
        self.cost = 0.0

    def sample(self):
        """Owned processes alive now (ProcInfo list), the main process included while it runs."""
        began = time.monotonic()
        procs = self.table.list()
        by_pid = {p.pid: p for p in procs}
        verdict = {}
        group_ours = self._group_witnessed(by_pid)

        def owned(info, depth=0):
            known = verdict.get(info.pid)
            if known is not None:
                return known
            result = False
            if info.pid == self.me or info.start < self.root_start:
                result = False
            elif self.owned.get(info.pid) == info.start:
                result = True
            elif group_ours and (info.sid == self.root_pid or info.pgid == self.root_pid):
                result = True
            else:
                parent = by_pid.get(info.ppid)
                if parent is not None and depth < 4096 and owned(parent, depth + 1):
                    result = True
                elif self.tokenless.get((info.pid, info.start), 0) < _TOKENLESS_AFTER_READS:
                    result = _lock.chain_has(self.table.env_value(info.pid, _lock.TOKEN_ENV), self.token)
                    if not result:
                        self.tokenless[(info.pid, info.start)] = self.tokenless.get((info.pid, info.start), 0) + 1
            if result:
                self.owned[info.pid] = info.start
            verdict[info.pid] = result
            return result

        alive = [p for p in procs if not p.gone and owned(p)]
        for pid, start in list(self.owned.items()):
            p = by_pid.get(pid)
            if p is None or p.start != start:
                del self.owned[pid]
        self.tokenless = {k: n for k, n in self.tokenless.items() if k[0] in by_pid}
        self.cost = time.monotonic() - began
        return alive

    def _group_witnessed(self, by_pid):
        """Whether the root's session/group id is still the call's: @seq-test/core's groupWitnessed rule.

        The kernel never hands out a pid that is still a session's or group's id, so the id stays ours while
        the session is never empty; once it has emptied, a stranger given the pid that calls setsid leads a
        new session with the same id. So it counts only while a process already known to be ours (pid and
        start time, from an earlier sample; the root itself, even as a zombie) is still in it.
        """
        known = dict(self.owned)
        if self.root_known:
            known[self.root_pid] = self.root_start
        for pid, start in known.items():
            p = by_pid.get(pid)
            if p is not None and p.start == start and (p.sid == self.root_pid or p.pgid == self.root_pid):
                return True
        return False

    def command_line(self, pid):
        return self.table.command_line(pid)


def _end_tree(tree, grace, extra=()):
    """SIGTERM to the whole tree (newcomers too), SIGKILL after `grace` seconds; returns [(pid, command, sig)]."""
    import signal as _signal

    signalled = {}  # pid -> [start, command, signal name]

    def send(procs, sig, name):
        for p in procs:
            entry = signalled.get(p.pid)
            command = entry[1] if entry else tree.command_line(p.pid)
            if _lock.signal_identity(p.pid, p.start, sig):
                signalled[p.pid] = [p.start, command, name]

    alive = tree.sample()
    send(alive, _signal.SIGTERM, "SIGTERM")
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = tree.sample()
        send([p for p in alive if p.pid not in signalled], _signal.SIGTERM, "SIGTERM")
    for _ in range(200):
        if not alive:
            break
        send(alive, _signal.SIGKILL, "SIGKILL")
        time.sleep(0.02)
        alive = tree.sample()
    return [(pid, v[1], v[2]) for pid, v in signalled.items()]


def _queue_slot(command):
    """Inside a seq-test run: a place in the run's nested queue (one call at a time across processes)."""
    if not _lock.parse_chain(os.environ.get(_lock.TOKEN_ENV)):
        return None  # not inside any run: nothing to queue behind
    try:
        return _lock.acquire(
            command=command,
            key=session_key,
            nested_only=True,
            on_warning=lambda message: None,
            impl="python",
        )
    except _lock.SeqTestError:
        return None


def _describe(args):
    if isinstance(args, (str, bytes)):
        return os.fsdecode(args)
    try:
        return " ".join(os.fsdecode(a) for a in args)
    except TypeError:
        return str(args)


def run(*popenargs, input=None, capture_output=False, timeout=None, check=False, **kwargs):
    """Like subprocess.run; see the module's doc for what differs.

    Extra keyword arguments: `linger` (seconds to wait for leftovers after the main process ended, None:
    wait for all), `kill_grace` (seconds between SIGTERM and SIGKILL, default 1) and `queue` (False: do
    not take a turn in the run's nested queue, only the in-process lock).
    """
    linger = kwargs.pop("linger", _default_linger())
    kill_grace = kwargs.pop("kill_grace", 1.0)
    use_queue = kwargs.pop("queue", True)
    if not _lock.platform_supported():
        return _original_run(*popenargs, input=input, capture_output=capture_output, timeout=timeout, check=check, **kwargs)
    if input is not None:
        if kwargs.get("stdin") is not None:
            raise ValueError("stdin and input arguments may not both be used.")
        kwargs["stdin"] = PIPE
    if capture_output:
        if kwargs.get("stdout") is not None or kwargs.get("stderr") is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output.")
        kwargs["stdout"] = PIPE
        kwargs["stderr"] = PIPE
    if "start_new_session" not in kwargs and "process_group" not in kwargs:
        kwargs["start_new_session"] = True
    deadline = None if timeout is None else time.monotonic() + timeout
    base_env = kwargs.pop("env", None)
    chain_base = (base_env or {}).get(_lock.TOKEN_ENV) or os.environ.get(_lock.TOKEN_ENV)

    with _call_lock:
        slot = _queue_slot(_describe(popenargs[0] if popenargs else kwargs.get("args", ""))) if use_queue else None
        try:
            token = slot.token if slot is not None else _lock.create_token()
            env = dict(os.environ if base_env is None else base_env)
            env[_lock.TOKEN_ENV] = _lock.extend_chain(_lock.trusted_chain(chain_base), token)
            leftovers = []
            process = tree = None
            try:
                process = subprocess.Popen(*popenargs, env=env, **kwargs)
                tree = _Tree(process.pid, token)
                stdout, stderr = _communicate(process, input, deadline, tree)
                leftovers = _wait_tree(tree, deadline, linger, kill_grace)
                retcode = process.poll()
            except TimeoutExpired:
                _end_tree(tree, kill_grace)
                stdout, stderr = _drain(process)
                raise TimeoutExpired(process.args, timeout, output=stdout, stderr=stderr)
            except BaseException as error:
                if process is None and isinstance(error, OSError):
                    raise  # the command could not start (not found, not executable): nothing runs
                # An interrupt can land anywhere, even inside Popen() after the child started, before we
                # know its pid: without a tree, the call's token still finds what runs.
                _end_tree(tree or _Tree(process.pid if process is not None else None, token), kill_grace)
                raise
            finally:
                if process is not None:
                    _close(process)
        finally:
            if slot is not None:
                slot.release()
    if check and retcode:
        raise CalledProcessError(retcode, process.args, output=stdout, stderr=stderr)
    completed = CompletedProcess(process.args, retcode, stdout, stderr)
    completed.leftovers = leftovers
    return completed


def _default_linger():
    value = os.environ.get("SEQ_TEST_SUBPROCESS_LINGER")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _communicate(process, input, deadline, tree):
    """process.communicate(), sampling the tree between slices so re-parented children stay known."""
    first = True
    while True:
        step = min(1.0, max(0.1, tree.cost * 10))
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutExpired(process.args, 0)
            step = min(step, remaining)
        try:
            return process.communicate(input if first else None, timeout=step)
        except TimeoutExpired:
            first = False
            tree.sample()


def _wait_tree(tree, deadline, linger, grace):
    """After the main process: wait until no owned process is left (or end them after `linger`)."""
    ended_main = time.monotonic()
    empty_before = False
    while True:
        alive = tree.sample()
        if not alive:
            # Only two empty samples in a row end the wait: a process caught inside execve shows an empty
            # environment, so a token carrier that just forked can be missed once (sh -c "job &" reaped first).
            if empty_before:
                return []
            empty_before = True
            time.sleep(0.02)
            continue
        empty_before = False
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise TimeoutExpired(None, 0)
        if linger is not None and now - ended_main >= linger:
            return _end_tree(tree, grace)
        time.sleep(min(0.25, max(0.02, tree.cost * 4)))


def _close(process):
    """What `with Popen(...)` does on the way out: close our ends of the pipes, reap the main process."""
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            try:
                stream.close()
            except (OSError, ValueError):
                pass
    try:
        process.wait(timeout=5)
    except TimeoutExpired:
        pass  # ended with the tree already; never block the caller on it


def _drain(process):
    """Output after the tree was ended; pipes still held by a process we could not find are closed."""
    try:
        return process.communicate(timeout=5)
    except TimeoutExpired:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        process.wait()
        return None, None


def is_patched():
    return getattr(subprocess, "_seq_test_original_run", None) is not None


def patch():
    """Makes `subprocess.run` (and so check_output, getoutput, ...) this run. Modules that did
    `from subprocess import run` before the patch keep the original."""
    if is_patched():
        return
    subprocess._seq_test_original_run = subprocess.run
    subprocess.run = run


def unpatch():
    original = getattr(subprocess, "_seq_test_original_run", None)
    if original is None:
        return
    subprocess.run = original
    del subprocess._seq_test_original_run
