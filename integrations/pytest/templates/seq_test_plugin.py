"""seq-test for pytest: one test run at a time per project, and every process a run starts accounted for.

Registered by one line in the root conftest.py: `pytest_plugins = ["seq_test_plugin"]`. It

1. turns pytest-xdist parallelism off (`-n`, `--numprocesses`, `--dist`, `--tx`, from the command line,
   PYTEST_ADDOPTS or addopts alike) and says so in the header;
2. holds the project's seq-test lock for the session (same on-disk protocol as `seq-test run`, so they
   queue behind each other; a pytest started inside a `seq-test run` joins its nested queue instead);
3. exports the session's token in SEQ_TEST_TOKEN and, at the end, ends what the session left running
   (TERM, then KILL after a grace) and lists it in the terminal summary;
4. on opt-in (`seq_test_patch_subprocess = true` or SEQ_TEST_PATCH_SUBPROCESS=1) makes `subprocess.run`
   the tree-aware `seq_subprocess.run`.

`pytest --help`, `--version`, `--markers`, `--collect-only`, `--fixtures` and `--fixtures-per-test` do
not take the lock. Settings: see the ini options below and the README of @seq-test/pytest.
"""

import os
import signal
import sys
import threading
import time

import pytest

import seq_subprocess
import seq_test_lock as _lock

TEMPLATE_VERSION = 2
XDIST_OPTIONS = ("numprocesses", "dist", "tx", "maxprocesses")
#: Helper processes Python itself keeps for the interpreter's lifetime: not leftovers of the tests.
INTERPRETER_HELPERS = ("from multiprocessing.resource_tracker import main", "from multiprocessing.forkserver import main")


def _say(line):
    try:
        sys.stderr.write("%s %s\n" % (_lock.PREFIX, line))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _truthy(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _seconds(name, value, default):
    if value is None or str(value).strip() == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise pytest.UsageError("%s expects a number of seconds, got %r" % (name, value))
    if seconds < 0:
        raise pytest.UsageError("%s expects a non-negative number of seconds, got %r" % (name, value))
    return seconds


def _verbose(config):
    """SEQ_TEST_VERBOSE=1 or `seq_test_verbose = true`: header lines also when nothing changed."""
    return _truthy(os.environ.get("SEQ_TEST_VERBOSE", "")) or bool(config.getini("seq_test_verbose"))


class _Session(object):
    """What the plugin holds for one pytest config (one per in-process pytest run).

    Header lines are (text, notable): a notable line says something changed (parallelism turned off, no lock,
    subprocess patched) and is always shown; the others only with SEQ_TEST_VERBOSE=1 / seq_test_verbose."""

    def __init__(self, config):
        self.config = config
        self.sequential_line = None
        self.lock_line = None
        self.patch_line = None
        self.notable = set()
        self.orphaned = None
        self.lock = None
        self.token = None
        self.previous_env = {}
        self.env_set = False
        #: (pid, start) of every process that existed when the session began: never a leftover of it
        self.before = set()
        self.reap_grace = 2.0
        self.leftovers = []
        self.finished = False
        self.patched = False
        self.signal_handlers = {}
        self.term_signal = None
        self.cleaning = False


def _state(config):
    return getattr(config, "_seq_test_session", None)


# --- options ----------------------------------------------------------------------------------------------


def pytest_addoption(parser):
    parser.addini(
        "seq_test_lock",
        type="bool",
        default=True,
        help="seq-test: hold the project's lock for the session (default true; SEQ_TEST_DISABLE=1 also turns it off)",
    )
    parser.addini(
        "seq_test_key",
        default="",
        help="seq-test: lock key (default: $SEQ_TEST_KEY, else .seqtestrc.json / package.json seqTest.key, "
        "else the git top-level above pytest's rootdir, else rootdir)",
    )
    parser.addini(
        "seq_test_wait_timeout",
        default="",
        help="seq-test: give up (exit 122) after waiting this many seconds for the lock (or $SEQ_TEST_WAIT_TIMEOUT)",
    )
    parser.addini(
        "seq_test_reap_grace",
        default="2",
        help="seq-test: seconds between SIGTERM and SIGKILL for processes the session left running (default 2)",
    )
    parser.addini(
        "seq_test_verbose",
        type="bool",
        default=False,
        help="seq-test: header lines on every run, also when nothing changed (or SEQ_TEST_VERBOSE=1)",
    )
    parser.addini(
        "seq_test_patch_subprocess",
        type="bool",
        default=False,
        help="seq-test: make subprocess.run the tree-aware seq_subprocess.run (or SEQ_TEST_PATCH_SUBPROCESS=1)",
    )
    parser.addini(
        "seq_test_allow_xdist",
        type="bool",
        default=False,
        help="seq-test: leave pytest-xdist's -n/--dist alone (default false: the run is sequential)",
    )


# --- 1. sequential ----------------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    state = _Session(config)
    config._seq_test_session = state
    xdist = config.pluginmanager.hasplugin("xdist")
    if hasattr(config, "workerinput"):
        state.sequential_line = "seq-test: pytest-xdist worker (seq_test_allow_xdist = true)"
        return
    requested = []
    option = config.option
    numprocesses = getattr(option, "numprocesses", None)
    if numprocesses not in (None, 0, "0"):
        requested.append("-n %s" % numprocesses)
    dist = getattr(option, "dist", "no")
    if dist not in (None, "no") and not numprocesses:
        requested.append("--dist %s" % dist)
    tx = getattr(option, "tx", None)
    if tx and not numprocesses:
        requested.append("--tx %s" % " ".join(tx))
    if config.getini("seq_test_allow_xdist"):
        state.sequential_line = "seq-test: pytest-xdist left alone (seq_test_allow_xdist = true)%s" % (
            ": " + ", ".join(requested) if requested else ""
        )
        return
    # pytest-xdist turns -n into dist/tx in its own (tryfirst) pytest_cmdline_main, which runs before any
    # pytest_configure, and starts workers from a trylast pytest_configure: resetting the options here,
    # first, leaves it nothing to start. (pytest_cmdline_preparse is gone in pytest 8+, and
    # pytest_load_initial_conftests is never called for a conftest.)
    for name in XDIST_OPTIONS:
        if hasattr(option, name):
            setattr(option, name, {"dist": "no", "tx": []}.get(name))
    if hasattr(option, "distload"):
        option.distload = False
    if requested:
        state.sequential_line = "seq-test: sequential: pytest-xdist parallelism turned off (%s ignored)" % ", ".join(
            requested
        )
        state.notable.add("sequential_line")
    elif xdist:
        state.sequential_line = "seq-test: sequential (pytest-xdist installed, parallelism off)"
    else:
        state.sequential_line = "seq-test: sequential (one process)"


# --- 2./3. lock, token ------------------------------------------------------------------------------------


def _lock_skip_reason(config):
    option = config.option
    if os.environ.get("SEQ_TEST_DISABLE") == "1":
        return "SEQ_TEST_DISABLE=1"
    if not config.getini("seq_test_lock"):
        return "seq_test_lock = false"
    for name, flag in (
        ("collectonly", "--collect-only"),
        ("showfixtures", "--fixtures"),
        ("show_fixtures_per_test", "--fixtures-per-test"),
    ):
        if getattr(option, name, False):
            return flag
    return None


def _lock_settings(config):
    """(key, slots, settings): $SEQ_TEST_KEY, else the ini's seq_test_key, else the project's seq-test config
    (.seqtestrc.json or package.json "seqTest", as `seq-test run` reads it), else the protocol's default.
    The search starts at pytest's rootdir rather than cwd: pytest run from any subdirectory of a project
    joins the same lane (inside a git work tree both give the git top-level)."""
    rootdir = str(config.rootpath if hasattr(config, "rootpath") else config.rootdir)
    settings = _lock.load_project_settings(rootdir) or {}
    key = os.environ.get("SEQ_TEST_KEY") or (config.getini("seq_test_key") or "").strip() or settings.get("key")
    if not key:
        key = _lock.project_key(cwd=rootdir, env={})
    return key, settings.get("slots") or 1, settings


def _rootdir(config):
    return os.path.realpath(str(config.rootpath if hasattr(config, "rootpath") else config.rootdir))


def _auto_what(config):
    what = {"argv": _command(config).split(" "), "cwd": _rootdir(config), "runner": "pytest"}
    # pytest >= 6.1: inipath (pathlib); older: inifile (py.path); None without a config file.
    ini = getattr(config, "inipath", None) or getattr(config, "inifile", None)
    if ini:
        what["config"] = os.path.realpath(str(ini))
    return what


def _command(config):
    try:
        args = list(config.invocation_params.args)
    except AttributeError:
        args = sys.argv[1:]
    return " ".join(["pytest"] + [str(a) for a in args])


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    config = session.config
    state = _state(config)
    if state is None or hasattr(config, "workerinput"):
        return
    if not _lock.platform_supported():
        state.lock_line = "seq-test: " + _lock.unsupported_message()
        state.notable.add("lock_line")
        return
    state.reap_grace = _seconds("seq_test_reap_grace", config.getini("seq_test_reap_grace"), 2.0)
    _watch_parent(state)  # before our handlers: a SIGHUP already ignored (nohup) is seen as such
    _install_signal_handlers(state)
    skip = _lock_skip_reason(config)
    try:
        if skip is None:
            state.lock = _acquire(config)
            state.token = state.lock.token
            waited = _lock.format_duration(state.lock.waited_ms)
            if state.lock.nested:
                state.lock_line = "seq-test: lock on %s: nested inside the seq-test run that started pytest (waited %s)" % (
                    state.lock.key,
                    waited,
                )
            else:
                state.lock_line = "seq-test: lock on %s held (waited %s)" % (state.lock.key, waited)
        else:
            state.token = _lock.create_token()
            state.lock_line = "seq-test: no lock (%s); leftovers are still reaped" % skip
            if skip.startswith("SEQ_TEST_DISABLE") or skip.startswith("seq_test_lock"):
                state.notable.add("lock_line")
    except _lock.SeqTestError as error:
        pytest.exit("seq-test: error: %s" % error, returncode=error.exit_code)
    chain = state.lock.chain if state.lock else _lock.extend_chain(_lock.trusted_chain(os.environ.get(_lock.TOKEN_ENV)), state.token)
    _set_env(state, _lock.TOKEN_ENV, chain)
    # Identities rather than a start-time bound: clock ticks since boot and "now" may disagree after a
    # suspend on older kernels; a set of what existed does not.
    state.before = {(p.pid, p.start) for p in _lock.process_table().list()}
    if state.lock:
        _set_env(state, "SEQ_TEST_TICKET", state.lock.entry.name[: -len(".json")])
        seq_subprocess.session_key = state.lock.key
    if _truthy(os.environ.get("SEQ_TEST_PATCH_SUBPROCESS", "")) or config.getini("seq_test_patch_subprocess"):
        if not seq_subprocess.is_patched():
            seq_subprocess.patch()
            state.patched = True
            state.patch_line = "seq-test: subprocess.run is seq_subprocess.run (waits for whole process trees)"
            state.notable.add("patch_line")


def _acquire(config):
    wait_timeout = _seconds(
        "seq_test_wait_timeout",
        os.environ.get("SEQ_TEST_WAIT_TIMEOUT") or config.getini("seq_test_wait_timeout"),
        None,
    )
    capman = config.pluginmanager.getplugin("capturemanager")
    line = _lock.WaitLine(sys.stderr)

    key, slots, settings = _lock_settings(config)

    def acquire():
        lock = _lock.acquire(
            command=_command(config),
            key=key,
            slots=slots,
            wait_timeout=wait_timeout,
            on_wait=line.update,
            wait_report=line.report_every,  # off a terminal the line is printed once: no timer for it
            on_warning=lambda message: _say("warning: " + message),
            impl="python",
            # "slots": "auto": the fingerprint of this run's memory history is pytest, its arguments, rootdir
            # and config file.
            auto_what=_auto_what(config),
            # maxSlots and memoryBudget from the same file as key and slots (found from rootdir, not cwd).
            project_settings=settings,
        )
        line.done("our turn after %s" % _lock.format_duration(lock.waited_ms) if lock.waited_ms >= 1 else None)
        return lock

    try:
        if capman is not None and hasattr(capman, "global_and_fixture_disabled"):
            with capman.global_and_fixture_disabled():
                return acquire()
        return acquire()
    except BaseException:
        line.done(None)
        raise


def _set_env(state, name, value):
    if name not in state.previous_env:
        state.previous_env[name] = os.environ.get(name)
    os.environ[name] = value


def _restore_env(state):
    for name, value in state.previous_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    state.previous_env = {}


def pytest_report_header(config):
    state = _state(config)
    if state is None:
        return None
    verbose = _verbose(config)
    names = ("sequential_line", "lock_line", "patch_line")
    lines = [getattr(state, name) for name in names if verbose or name in state.notable]
    return [line for line in lines if line] or None


# --- end of the session -----------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """After every pytest_sessionfinish implementation, pytest's teardown of session fixtures included: what
    is still running now is a leftover. A wrapper, so that it runs even when one of them raises (pytest then
    skips pytest_unconfigure); the innermost one (trylast), so that the terminal reporter's summary, printed
    after its own yield, comes later and can list what we ended."""
    yield
    state = _state(session.config)
    if state is not None:
        # Tests passed, failed or none collected: a whole run, whose memory peak "slots": "auto" may learn from.
        _finish(state, completed=exitstatus in (0, 1, 5) and state.term_signal is None)


def _finish(state, grace=None, completed=False):
    if state.finished:
        return
    state.finished = True
    state.cleaning = True
    try:
        if state.patched:
            seq_subprocess.unpatch()
            state.patched = False
        if state.token is not None:
            if grace is None:
                grace = state.reap_grace
            try:
                state.leftovers = _reap_session(state, grace)
            except Exception as error:  # never let reaping hide the test results
                _say("warning: could not reap the session's leftovers: %s" % error)
    finally:
        try:
            if state.lock is not None:
                state.lock.release(completed=completed)
        finally:
            _restore_env(state)
            seq_subprocess.session_key = None
            state.cleaning = False


def _session_processes(state):
    """Processes of the session still running: descendants of pytest started since the session began, and
    every process of this uid carrying the session's token; never pytest itself or its ancestors."""
    table = _lock.process_table()
    me = os.getpid()
    procs = table.list()
    by_pid = {p.pid: p for p in procs}
    ancestors = set()
    p = by_pid.get(me)
    while p is not None and p.pid not in ancestors and p.pid > 1:
        ancestors.add(p.pid)
        p = by_pid.get(p.ppid)
    children = {}
    for info in procs:
        children.setdefault(info.ppid, []).append(info)
    found = {}
    stack = [
        c for c in children.get(me, []) if (c.pid, c.start) not in state.before and not _interpreter_helper(table, c)
    ]
    while stack:
        info = stack.pop()
        if info.pid in found or info.pid in ancestors:
            continue
        found[info.pid] = info
        stack.extend(children.get(info.pid, []))
    for info in procs:
        # Only a process started since the session began can carry its token (an environment is fixed at
        # exec): older ones are not even read.
        if info.pid in found or info.pid in ancestors or info.gone or (info.pid, info.start) in state.before:
            continue
        if _lock.chain_has(table.env_value(info.pid, _lock.TOKEN_ENV), state.token) and table.is_ours(info.pid):
            if info.ppid == me and _interpreter_helper(table, info):
                continue
            found[info.pid] = info
    return [info for info in found.values() if not info.gone]


def _interpreter_helper(table, info):
    command = table.command_line(info.pid)
    return any(marker in command for marker in INTERPRETER_HELPERS)


def _reap_session(state, grace):
    ended = []
    seen = set()
    for _ in range(3):  # a dying process may start another (a shell trap): sweep again
        targets = sorted((p for p in _session_processes(state) if (p.pid, p.start) not in seen), key=lambda p: p.pid)
        if not targets:
            break
        seen.update((p.pid, p.start) for p in targets)
        ended.extend(_lock.end_processes(targets, grace if not ended else min(grace, 0.5)))
    return ended


def pytest_terminal_summary(terminalreporter):
    state = _state(terminalreporter.config)
    if state is not None and state.orphaned:
        terminalreporter.write_line(
            "seq-test: the process that started pytest (pid %d) is gone: the session was ended" % state.orphaned
        )
    if state is None or not state.leftovers:
        return
    count = len(state.leftovers)
    terminalreporter.write_sep(
        "=", "seq-test: ended %d leftover process%s of this session" % (count, "" if count == 1 else "es"), yellow=True
    )
    for pid, command, sig in state.leftovers:
        terminalreporter.write_line("pid %d (%s): %s" % (pid, sig, command))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    state = _state(config)
    if state is None:
        return
    _finish(state)
    _restore_signal_handlers(state)
    if state.term_signal is not None:
        # Exit the way the signal asked for (status 128+N), now that the lock is released and the
        # session's processes are ended. atexit will not run: leave every queue place of this process now.
        _lock.release_all()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        signal.signal(state.term_signal, signal.SIG_DFL)
        os.kill(os.getpid(), state.term_signal)


# --- SIGTERM / SIGHUP -------------------------------------------------------------------------------------


def _watch_parent(state):
    """`timeout 60 npx …`-style wrappers die and leave pytest running on its own, holding the lock for a
    result nobody reads: when the process that started pytest is gone (pytest re-parented), end the session
    as on SIGTERM. Not under nohup (SIGHUP ignored), not with SEQ_TEST_ORPHAN=keep, not in an xdist worker."""
    parent = os.getppid()
    if parent <= 1 or os.environ.get("SEQ_TEST_ORPHAN") == "keep" or hasattr(state.config, "workerinput"):
        return
    try:
        if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
            return
    except (AttributeError, ValueError):
        return

    # A pidfd on the parent (Python 3.9+, Linux 5.3+) wakes this thread only when the parent ends: a waiting
    # pytest does no periodic work. Opened before the first check, so a parent gone before it is seen there.
    ended = [_lock.pidfd_waiter(parent)]

    def watch():
        while not state.finished:
            if os.getppid() != parent:
                state.orphaned = parent  # said in the terminal summary (stderr may be captured now)
                _say("the process that started pytest (pid %d) is gone: ending the session" % parent)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            if ended[0] is not None and ended[0]():
                ended[0] = None  # told once; should the check above disagree, it is asked every 0.5 s
            else:
                time.sleep(0.5)

    threading.Thread(target=watch, name="seq-test-parent-watch", daemon=True).start()


def _install_signal_handlers(state):
    """pytest runs no hook on SIGTERM or SIGHUP: turn the first into a KeyboardInterrupt (pytest then tears
    down, and we release and reap), and a second one into an immediate release, reap and exit."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        try:
            if signal.getsignal(signum) is not signal.SIG_DFL:
                continue  # someone else handles it; leave theirs
            state.signal_handlers[signum] = signal.signal(signum, _make_handler(state))
        except (OSError, ValueError):
            pass


def _make_handler(state):
    def handler(signum, frame):
        first = state.term_signal is None
        if first:
            state.term_signal = signum
        if state.cleaning:
            return  # already ending: let the cleanup finish, then exit with the signal
        if first:
            _say("received %s: stopping the session (again to stop at once)" % signal.Signals(signum).name)
            raise KeyboardInterrupt("seq-test: received %s" % signal.Signals(signum).name)
        _say("received %s again: releasing the lock and ending the session's processes now" % signal.Signals(signum).name)
        _finish(state, grace=0.2)
        _lock.release_all()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        time.sleep(1)
        os._exit(128 + signum)

    return handler


def _restore_signal_handlers(state):
    for signum, previous in state.signal_handlers.items():
        try:
            signal.signal(signum, previous)
        except (OSError, ValueError, TypeError):
            pass
    state.signal_handlers = {}
