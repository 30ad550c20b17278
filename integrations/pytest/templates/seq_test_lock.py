"""The seq-test lock protocol, versions 1 and 2 (memory-aware admission), in stdlib-only Python (3.8 to 3.13).

docs/PROTOCOL.md of seq-test is the specification; @seq-test/core implements the same in TypeScript and the
conformance tests run each implementation against the other, so a pytest run and a `seq-test run` of the
same project wait for each other in one FIFO queue.

Limits, stated honestly:
- Linux is the tested platform (/proc). macOS is best effort and untested: it reads `ps`, whose start time
  has one-second resolution (a pid reused within the same second is not noticed). Windows is not supported:
  `platform_supported()` is False and callers run without the lock.
- A process whose environment we cannot read (another user's, non-dumpable) is never treated as ours.
"""

import atexit
import errno
import json
import os
import re
import select
import shutil
import signal
import stat as stat_mod
import subprocess
import sys
import time

TEMPLATE_VERSION = 2
PROTOCOL_VERSION = 1
TOKEN_ENV = "SEQ_TEST_TOKEN"
PREFIX = "seq-test:"

# Exit codes shared with the seq-test CLI.
EXIT_WAIT_TIMEOUT = 122
EXIT_LOCK_BUSY = 123
EXIT_USAGE = 125

POLL_SECONDS = 0.1  # the protocol's bound: re-evaluate at least this often (a SIGKILLed holder changes no file)
# ... when next; a waiter further back (a live waiter between it and every holder) only needs to notice the
# death of the waiter just ahead, and does within this (docs/PROTOCOL.md, "Deciding")
IDLE_POLL_SECONDS = 2.0
WAIT_REPORT_SECONDS = 0.25
WRITE_ATTEMPTS = 5  # a writer whose temp file vanished before its rename (an older reader removed it) retries
NUMBER_DIGITS = 12
MAX_NUMBER = 999999999999  # the largest ticket number: a joiner never takes more (docs/PROTOCOL.md, "Joining")
MAX_READ_BYTES = 1 << 20

TICKET_NAME = re.compile(r"^(\d{12})-((\d+)\.(\d+)\.([0-9a-f]{6,64}))\.json$")
MARKER_NAME = re.compile(r"^((\d+)\.(\d+)\.([0-9a-f]{6,64}))\.json$")
# Ticket-like names with a number too wide, written by older implementations that overflowed.
OVERFLOW_NAME = re.compile(r"^\d{13,}-((\d+)\.(\d+)\.[0-9a-f]{6,64})\.json$")
# `.tmp-<writer's token>-<16 hex>`: a writer's temp file, judged by the writer's liveness.
TEMP_NAME = re.compile(r"^\.tmp-((\d+)\.(\d+)\.[0-9a-f]{6,64})-[0-9a-f]{16}$")
TOKEN_RE = re.compile(r"^(\d+)\.(\d+)\.([0-9a-f]{6,64})$")


class SeqTestError(Exception):
    """An error reported as one line, with the exit code the CLI would use."""

    def __init__(self, message, exit_code=EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


# --- platform ---------------------------------------------------------------------------------------------


def platform_supported(platform=None):
    platform = platform or sys.platform
    return platform.startswith("linux") or platform == "darwin"


def unsupported_message(platform=None):
    platform = platform or sys.platform
    return (
        "%s is not supported: seq-test runs on Linux (and macOS, best effort); use WSL on Windows. "
        "Running without the lock." % platform
    )


class ProcInfo(object):
    __slots__ = ("pid", "ppid", "pgid", "sid", "start", "state", "comm")

    def __init__(self, pid, ppid, pgid, sid, start, state, comm):
        self.pid = pid
        self.ppid = ppid
        self.pgid = pgid
        self.sid = sid
        self.start = start
        self.state = state
        self.comm = comm

    @property
    def gone(self):
        return self.state in ("Z", "X")

    def __repr__(self):
        return "ProcInfo(pid=%d, ppid=%d, start=%d, state=%s, comm=%r)" % (
            self.pid,
            self.ppid,
            self.start,
            self.state,
            self.comm,
        )


def parse_stat(pid, text):
    """Parses /proc/<pid>/stat. The command name may hold spaces and ')': split after the LAST ')'."""
    open_at = text.find("(")
    close_at = text.rfind(")")
    if open_at == -1 or close_at == -1:
        return None
    fields = text[close_at + 2 :].split(" ")
    # fields[0] is field 3 (state); field N is fields[N - 3]; starttime is field 22.
    if len(fields) < 20:
        return None
    try:
        return ProcInfo(
            pid,
            int(fields[1]),
            int(fields[2]),
            int(fields[3]),
            int(fields[19]),
            fields[0],
            text[open_at + 1 : close_at],
        )
    except ValueError:
        return None


class LinuxProcessTable(object):
    """/proc reader: one open+read per process; environments are read only when asked."""

    def __init__(self):
        self._boot_id = None
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def get(self, pid):
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                text = f.read().decode("latin-1")
        except (OSError, ValueError):
            return None
        return parse_stat(pid, text)

    def list(self):
        result = []
        try:
            names = os.listdir("/proc")
        except OSError:
            return result
        for name in names:
            if not name.isdigit():
                continue
            info = self.get(int(name))
            if info is not None:
                result.append(info)
        return result

    def env_value(self, pid, name):
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                data = f.read()
        except OSError:
            return None
        prefix = name.encode() + b"="
        for entry in data.split(b"\0"):
            if entry.startswith(prefix):
                return entry[len(prefix) :].decode("utf-8", "replace")
        return None

    def command_line(self, pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        if data:
            return " ".join(p.decode("utf-8", "replace") for p in data.rstrip(b"\0").split(b"\0"))
        info = self.get(pid)
        return info.comm if info else "pid %d" % pid

    def is_ours(self, pid):
        try:
            return os.stat("/proc/%d" % pid).st_uid == os.getuid()
        except OSError:
            return False

    def boot_id(self):
        if self._boot_id is None:
            try:
                with open("/proc/sys/kernel/random/boot_id") as f:
                    self._boot_id = f.read().strip()
            except OSError:
                self._boot_id = ""
        return self._boot_id

    def now_start(self):
        """The start value a process started right now would get (clock ticks since boot)."""
        try:
            with open("/proc/uptime") as f:
                return int(float(f.read().split()[0]) * self._ticks)
        except (OSError, ValueError):
            return 0


class DarwinProcessTable(object):
    """macOS, best effort and untested here: one `ps` spawn per query; lstart has one-second resolution."""

    _LINE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+\s+\S+\s+\d+\s+[\d:]+\s+\d+)\s+(.*)$")

    def __init__(self):
        self._boot_id = None

    def _ps(self, select_args):
        try:
            out = subprocess.check_output(
                ["ps"] + select_args + ["-o", "pid=,ppid=,pgid=,sess=,state=,lstart=,comm="],
                env=dict(os.environ, LC_ALL="C"),
                stderr=subprocess.DEVNULL,
            ).decode("utf-8", "replace")
        except (OSError, subprocess.CalledProcessError):
            return []
        result = []
        for line in out.splitlines():
            m = self._LINE.match(line)
            if not m:
                continue
            try:
                start = int(time.mktime(time.strptime(m.group(6), "%a %b %d %H:%M:%S %Y")))
            except ValueError:
                continue
            result.append(
                ProcInfo(
                    int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)), start, m.group(5)[:1], m.group(7)
                )
            )
        return result

    def get(self, pid):
        found = self._ps(["-p", str(pid)])
        return found[0] if found else None

    def list(self):
        return self._ps(["-A"])

    def env_value(self, pid, name):
        try:
            out = subprocess.check_output(
                ["ps", "-E", "-ww", "-o", "command=", "-p", str(pid)], stderr=subprocess.DEVNULL
            ).decode("utf-8", "replace")
        except (OSError, subprocess.CalledProcessError):
            return None
        m = re.search(r"(?:^|\s)" + re.escape(name) + r"=(\S*)", out)
        return m.group(1) if m else None

    def command_line(self, pid):
        try:
            out = subprocess.check_output(["ps", "-ww", "-o", "command=", "-p", str(pid)], stderr=subprocess.DEVNULL)
            return out.decode("utf-8", "replace").strip()
        except (OSError, subprocess.CalledProcessError):
            return "pid %d" % pid

    def is_ours(self, pid):
        return True  # `ps -E` shows only our own user's environments

    def boot_id(self):
        if self._boot_id is None:
            try:
                self._boot_id = subprocess.check_output(["sysctl", "-n", "kern.boottime"]).decode().strip()
            except (OSError, subprocess.CalledProcessError):
                self._boot_id = "unknown-boot"
        return self._boot_id

    def now_start(self):
        return int(time.time())


_table = None


def process_table():
    global _table
    if _table is None:
        if not platform_supported():
            raise SeqTestError(unsupported_message())
        _table = LinuxProcessTable() if sys.platform.startswith("linux") else DarwinProcessTable()
    return _table


def identity_of(pid):
    """(pid, start) of a live process, or None."""
    info = process_table().get(pid)
    if info is None or info.gone:
        return None
    return (pid, info.start)


def parent_field():
    """The ticket's optional `parent`: the process that started us (pid, start time, short name), so that
    `seq-test status` can say when it is gone and we were re-parented. None when it cannot be read."""
    pid = os.getppid()
    info = process_table().get(pid) if pid >= 1 else None
    if info is None or info.gone:
        return None
    return {"pid": pid, "start": info.start, "name": info.comm}


def is_alive(pid, start):
    """True while the very process we recorded still runs (same pid, same start time, not a zombie). A start
    time recorded inside another time namespace is translated to ours before it is compared."""
    info = process_table().get(pid)
    if info is None or info.gone:
        return False
    return info.start == start or info.start == start_in_our_clock(pid, start)


# Linux time namespaces (`unshare --time --boottime N`) shift what /proc shows: a start time reads as the
# kernel's value plus the *reader's* boottime offset, so a token written inside such a namespace names its
# owner with a start time that differs, read from outside, by the difference of the two offsets.
_our_time_ns = []


def _time_namespace(pid):
    """(namespace id, boottime offset in seconds) of a process, or None when unreadable."""
    try:
        ns = os.readlink("/proc/%s/ns/time" % pid)
        offset = 0.0
        with open("/proc/%s/timens_offsets" % pid) as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] == "boottime":
                    offset = int(parts[1]) + int(parts[2]) / 1e9
        return ns, offset
    except (OSError, ValueError, IndexError):
        return None


def start_in_our_clock(pid, start):
    """The start time, in our reading, of a process that reports `start` from its own time namespace; None
    when it shares ours (or nothing can be read). Consulted only when a start time does not match."""
    if not sys.platform.startswith("linux"):
        return None
    if not _our_time_ns:
        _our_time_ns.append(_time_namespace("self"))
    ours = _our_time_ns[0]
    theirs = _time_namespace(pid)
    if ours is None or theirs is None or theirs[0] == ours[0]:
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return start - int(round((theirs[1] - ours[1]) * ticks))


def signal_identity(pid, start, sig):
    """Sends a signal only if the process is still the one we recorded."""
    if not is_alive(pid, start):
        return False
    try:
        os.kill(pid, sig)
        return True
    except OSError:
        return False


# --- tokens -----------------------------------------------------------------------------------------------


def create_token(pid=None, start=None):
    """`<pid>.<start>.<12 hex>` naming the owner process (default: this one)."""
    if pid is None:
        pid = os.getpid()
    if start is None:
        ident = identity_of(pid)
        if ident is None:
            raise SeqTestError("cannot read our own process entry (is /proc mounted?)")
        start = ident[1]
    return "%d.%d.%s" % (pid, start, os.urandom(6).hex())


def parse_token(value):
    """(pid, start) of a well-formed token, else None."""
    m = TOKEN_RE.match(value or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_chain(chain):
    """Well-formed tokens of a chain, outermost first; malformed entries are dropped."""
    if not chain:
        return []
    return [t for t in chain.split(":") if parse_token(t)]


def extend_chain(chain, token):
    return ":".join(parse_chain(chain) + [token])


def chain_has(chain, token):
    return bool(chain) and token in chain.split(":")


def trusted_chain(chain):
    """The part of an inherited chain this process may claim (@seq-test/core's trustedChain), or None.

    Only tokens whose owner is alive and is this process or one of its ancestors: a dead run's token left in
    a shell, or a live holder's token copied by an outside process, is dropped (same user, tokens are not
    secrets: the process tree decides, not the token).
    """
    tokens = parse_chain(chain)
    if not tokens or not platform_supported():
        return None
    table = process_table()
    ancestry = {}
    pid = os.getpid()
    for _ in range(4096):
        if pid <= 0 or pid in ancestry:
            break
        info = table.get(pid)
        if info is None:
            break
        ancestry[pid] = info.start
        pid = info.ppid
    kept = [t for t in tokens if ancestry.get(parse_token(t)[0]) == parse_token(t)[1]]
    return ":".join(kept) or None


# --- state dir and key ------------------------------------------------------------------------------------


def state_dir_path(env=None):
    env = os.environ if env is None else env
    if env.get("SEQ_TEST_STATE_DIR"):
        return env["SEQ_TEST_STATE_DIR"]
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg:
        try:
            st = os.lstat(xdg)
            if stat_mod.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
                return os.path.join(xdg, "seq-test")
        except OSError:
            pass
    return os.path.join(env.get("TMPDIR") or "/tmp", "seq-test-%d" % os.getuid())


def ensure_state_dir(env=None):
    """Creates the state dir (0700) if needed and refuses one that others could tamper with."""
    env = os.environ if env is None else env
    path = state_dir_path(env)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as e:
        if _lexists(path):
            assert_safe_dir(path, env)
        raise SeqTestError(
            "cannot create the state dir %s: %s; %s" % (path, _errno_name(e), _private_dir_fix(path, env))
        )
    assert_safe_dir(path, env)
    return path


def assert_safe_dir(path, env=None):
    """Refuses a state dir that is a symlink, not a directory, someone else's, or writable by others, with a fix
    that is safe to run as printed: `chmod 700` only for the default state dir seq-test names and creates,
    never for a directory SEQ_TEST_STATE_DIR points at (it may be /tmp, a project or a system directory)."""
    env = os.environ if env is None else env
    try:
        st = os.lstat(path)
    except OSError as e:
        raise SeqTestError(
            "refusing state dir %s: cannot inspect it (%s); %s" % (path, _errno_name(e), _private_dir_fix(path, env))
        )

    def refuse(why, fix=None):
        return SeqTestError("refusing state dir %s: %s; %s" % (path, why, fix or _private_dir_fix(path, env)))

    if stat_mod.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise refuse("it is a symlink (to %s)" % target)
    if not stat_mod.S_ISDIR(st.st_mode):
        raise refuse("it is not a directory")
    if st.st_uid != os.getuid():
        raise refuse(
            "it belongs to %s, not to you (%s); another user may have created it to see or change your runs"
            % (_user_name(st.st_uid), _user_name(os.getuid()))
        )
    if st.st_mode & 0o022:
        ours = path == _default_state_dir(env) and not st.st_mode & 0o1000
        raise refuse("mode %o lets others write to it" % (st.st_mode & 0o7777), "run chmod 700 %s" % path if ours else None)


def existing_state_dir(env=None):
    """The state dir for code that only looks: validated as acquire() validates it, never created; None when
    it does not exist."""
    env = os.environ if env is None else env
    path = state_dir_path(env)
    if not _lexists(path):
        return None
    assert_safe_dir(path, env)
    return path


def _default_state_dir(env):
    return state_dir_path(dict(env, SEQ_TEST_STATE_DIR=""))


def _private_dir_fix(refused, env):
    """Point SEQ_TEST_STATE_DIR at a new private directory (seq-test creates it 0700)."""
    candidates = [_default_state_dir(env), os.path.join(os.path.expanduser("~"), ".cache", "seq-test")]
    suggestion = candidates[1]
    for c in candidates:
        if c != refused and (not _lexists(c) or _is_safe_dir(c)):
            suggestion = c
            break
    return (
        "set SEQ_TEST_STATE_DIR to a private directory of yours (seq-test creates it), e.g. export SEQ_TEST_STATE_DIR=%s"
        % suggestion
    )


def _is_safe_dir(path):
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat_mod.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def _lexists(path):
    try:
        os.lstat(path)
        return True
    except OSError as e:
        return e.errno != errno.ENOENT


def _user_name(uid):
    try:
        import pwd

        return "user %s (uid %d)" % (pwd.getpwuid(uid).pw_name, uid)
    except (ImportError, KeyError):
        return "uid %d" % uid


def _errno_name(e):
    return errno.errorcode.get(e.errno, str(e))


def project_key(key=None, cwd=None, env=None):
    """--key, else $SEQ_TEST_KEY, else the real path of the nearest dir holding a `.git` entry, else of cwd."""
    env = os.environ if env is None else env
    explicit = key if key else env.get("SEQ_TEST_KEY")
    if explicit:
        return explicit
    start = os.path.realpath(cwd or os.getcwd())
    d = start
    while True:
        if os.path.exists(os.path.join(d, ".git")):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return start
        d = parent


RC_FILE = ".seqtestrc.json"
PACKAGE_JSON_FIELD = "seqTest"
PROJECT_CONFIG_KEYS = (
    "key",
    "slots",
    "maxSlots",
    "memoryBudget",
    "timeout",
    "grace",
    "linger",
    "maxMemory",
    "killSignal",
)


def load_project_settings(start):
    """The lock settings of the project's seq-test config, as `seq-test run` reads them.

    The nearest dir, from `start` up to the git top-level (outside a repository: `start` only), holding
    `.seqtestrc.json` (first) or a package.json with a "seqTest" field wins. Returns {"file", "key", "slots"} (key/slots None when not
    set) or None. Only key and slots matter to the lock; the other settings (timeout, linger, ...) belong to
    `seq-test run` and are not checked here beyond their names.
    """
    try:
        d = os.path.realpath(start)
    except OSError:
        return None
    # Up to the git top-level; outside a repository only `start` itself (never a stray ~/package.json),
    # exactly as @seq-test/core's loadProjectConfig.
    dirs = []
    while True:
        dirs.append(d)
        if os.path.exists(os.path.join(d, ".git")):
            break
        parent = os.path.dirname(d)
        if parent == d:
            dirs = dirs[:1]
            break
        d = parent
    for directory in dirs:
        found = _read_settings_in(directory)
        if found is not None:
            return found
    return None


def _read_settings_in(directory):
    rc = os.path.join(directory, RC_FILE)
    try:
        with open(rc, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        text = None
    if text is not None:
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise SeqTestError("%s is not valid JSON: %s" % (rc, e))
        return _validate_settings(raw, rc, "")
    pkg = os.path.join(directory, "package.json")
    try:
        with open(pkg, encoding="utf-8") as f:
            parsed = json.loads(f.read())
    except (OSError, ValueError):
        return None  # a broken package.json is npm's problem; it holds no settings of ours
    if not isinstance(parsed, dict) or PACKAGE_JSON_FIELD not in parsed:
        return None
    return _validate_settings(parsed[PACKAGE_JSON_FIELD], pkg, PACKAGE_JSON_FIELD + ".")


def _validate_settings(raw, path, prefix):
    if not isinstance(raw, dict):
        raise SeqTestError('%s %smust be a JSON object' % (path, '"%s" ' % prefix.rstrip(".") if prefix else ""))
    for name in raw:
        if name != "$schema" and name not in PROJECT_CONFIG_KEYS:
            raise SeqTestError(
                '%s "%s%s" is not a seq-test setting (known: %s)' % (path, prefix, name, ", ".join(PROJECT_CONFIG_KEYS))
            )
    key = raw.get("key")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise SeqTestError('%s "%skey" must be a non-empty string, got %r' % (path, prefix, key))
    slots = raw.get("slots")
    if slots is not None:
        value = None
        if slots == "auto":
            value = "auto"
        elif isinstance(slots, int) and not isinstance(slots, bool):
            value = slots
        elif isinstance(slots, str) and slots.strip().isdigit():
            value = int(slots.strip())
        if value is None or (value != "auto" and value < 1):
            raise SeqTestError('%s "%sslots" must be a whole number >= 1 or "auto", got %r' % (path, prefix, slots))
        slots = value
    settings = {"file": path, "key": key, "slots": slots}
    settings.update(_validate_auto_settings(raw, path, prefix, slots))
    return settings


def _validate_auto_settings(raw, path, prefix, slots):
    """maxSlots and memoryBudget, which only apply with "slots": "auto" (protocol version 2)."""
    result = {"maxSlots": None, "memoryBudget": None}
    max_slots = raw.get("maxSlots")
    if max_slots is not None:
        if isinstance(max_slots, str) and max_slots.strip().isdigit():
            max_slots = int(max_slots.strip())
        if not isinstance(max_slots, int) or isinstance(max_slots, bool) or max_slots < 1:
            raise SeqTestError('%s "%smaxSlots" must be a whole number >= 1, got %r' % (path, prefix, raw["maxSlots"]))
        result["maxSlots"] = max_slots
    budget = raw.get("memoryBudget")
    if budget is not None:
        size = parse_size(budget)
        if size is None:
            raise SeqTestError(
                '%s "%smemoryBudget" must be a size such as "512M" or "2G" (or a number of bytes), got %r'
                % (path, prefix, budget)
            )
        result["memoryBudget"] = size
    for name in ("maxSlots", "memoryBudget"):
        if result[name] is not None and slots != "auto":
            raise SeqTestError('%s "%s%s" only applies with "slots": "auto"' % (path, prefix, name))
    return result


def parse_size(value):
    """"512M", "2G", "1.5G" or a number of bytes (powers of 1024) -> bytes > 0, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value <= MAX_SAFE_INTEGER else None
    if not isinstance(value, str):
        return None
    m = re.match(r"^(\d*\.?\d+)\s*([KMGT]?)(?:i?B)?$", value.strip(), re.I)
    if not m:
        return None
    size = int(float(m.group(1)) * 1024 ** " KMGT".index((m.group(2) or " ").upper()))
    return size if size > 0 else None


def key_dir_name(key):
    """"q-" + the first 24 hex digits of SHA-256 of the key's UTF-8 bytes.

    A path that is not valid UTF-8 is hashed the way Node sees it (each invalid sequence as U+FFFD), so both
    implementations agree on the directory.
    """
    import hashlib  # here: loading OpenSSL costs milliseconds at import time

    data = os.fsencode(key).decode("utf-8", "replace").encode("utf-8")
    return "q-" + hashlib.sha256(data).hexdigest()[:24]


# --- files ------------------------------------------------------------------------------------------------


def write_atomic(directory, path, writer, data):
    """Writes the whole content to an exclusive temp file named after the writer's token in the same dir,
    then renames it onto `path`. Readers remove a temp file only once its writer is dead (never by its age),
    but an older reader judged by mtime: a temp file that vanished before its rename is written again."""
    text = (json.dumps(data, separators=(",", ":")) + "\n").encode("utf-8")
    attempt = 0
    while True:
        attempt += 1
        temp = os.path.join(directory, ".tmp-%s-%s" % (writer, os.urandom(8).hex()))
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            try:
                view = memoryview(text)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(temp, path)
            return
        except OSError as e:
            unlink_quiet(temp)
            if e.errno == errno.ENOENT and attempt < WRITE_ATTEMPTS and _kind_of(directory) == "dir":
                continue
            raise file_system_error("write %s" % path, directory, e)
        except BaseException:
            unlink_quiet(temp)
            raise


def file_system_error(what, directory, e):
    """A file-system failure in the state dir as one line naming a fix (the state dir is ours and private, so
    the chmod offered touches nothing of anyone else's); same text as @seq-test/core."""
    code = _errno_name(e)
    if code in ("ENOSPC", "EDQUOT"):
        fix = (
            "the file system holding %s is full: free some space, or set SEQ_TEST_STATE_DIR to a private "
            "directory on another one" % directory
        )
    elif code in ("EACCES", "EPERM"):
        fix = (
            "make it yours and writable again with chmod u+rwx %s, or set SEQ_TEST_STATE_DIR to another private "
            "directory" % directory
        )
    elif code == "EROFS":
        fix = "the file system is read-only: set SEQ_TEST_STATE_DIR to a private directory on a writable one"
    else:
        fix = "check %s, or set SEQ_TEST_STATE_DIR to another private directory" % directory
    return SeqTestError("cannot %s (%s); %s" % (what, code, fix))


def read_regular_file(path):
    """The text of a regular file, or None when `path` is something else (a directory, a FIFO, a device):
    opened with O_NOFOLLOW (a symlink fails with ELOOP) and O_NONBLOCK (a FIFO never blocks), then fstat'ed."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        size = 0
        while size < MAX_READ_BYTES:
            chunk = os.read(fd, MAX_READ_BYTES - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(fd)


def _kind_of(path):
    """'dir', 'absent', 'symlink' or 'other', without following a symlink."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "absent"
    if stat_mod.S_ISDIR(mode):
        return "dir"
    return "symlink" if stat_mod.S_ISLNK(mode) else "other"


def _remove_tree(path):
    """Removes a directory tree (or a file or symlink in its place) without following any symlink."""
    kind = _kind_of(path)
    if kind == "absent":
        return
    if kind != "dir":
        unlink_quiet(path)
        return
    shutil.rmtree(path, ignore_errors=True)  # rmtree never follows symlinks below its top


def unlink_quiet(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _list_dir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def _remove_if_writer_dead(path, name):
    """A writer's temp file goes once its writer is dead; one without a token (older writers) is left alone."""
    m = TEMP_NAME.match(name)
    if m and not is_alive(int(m.group(2)), int(m.group(3))):
        unlink_quiet(path)


def ticket_file_name(number, token):
    return "%0*d-%s.json" % (NUMBER_DIGITS, number, token)


def parse_ticket(text):
    """A ticket dict, or None for garbage. A newer `v` is accepted while the v1 fields are there."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for field in ("v", "pid", "start"):
        value = data.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
    if not isinstance(data.get("token"), str):
        return None
    return data


class Entry(object):
    """One ticket in a queue dir."""

    __slots__ = ("name", "path", "number", "token", "pid", "start", "ticket", "alive")

    def __init__(self, name, path, number, token, pid, start, ticket, alive):
        self.name = name
        self.path = path
        self.number = number
        self.token = token
        self.pid = pid
        self.start = start
        self.ticket = ticket
        self.alive = alive

    @property
    def command(self):
        return (self.ticket or {}).get("command") or ""

    @property
    def started_at(self):
        value = (self.ticket or {}).get("startedAt")
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def __repr__(self):
        return "Entry(%s, alive=%s)" % (self.name, self.alive)


class QueueState(object):
    __slots__ = ("tickets", "choosing", "dead_markers", "dead_overflow")

    def __init__(self, tickets, choosing, dead_markers, dead_overflow=()):
        self.tickets = tickets
        self.choosing = choosing
        self.dead_markers = dead_markers
        # files named like tickets with more than 12 digits (older versions overflowed) whose owner is dead
        self.dead_overflow = list(dead_overflow)


class Decision(object):
    __slots__ = ("holding", "position", "ahead", "blocked_by_choosing", "lost")

    def __init__(self, holding, position, ahead, blocked_by_choosing, lost):
        self.holding = holding
        self.position = position
        self.ahead = ahead
        self.blocked_by_choosing = blocked_by_choosing
        self.lost = lost


class Queue(object):
    """One queue dir: tickets/, choosing/ and nested/. Ordering follows Lamport's bakery algorithm."""

    def __init__(self, directory, warn=None, above=()):
        """`above`: the directories between the state dir and this queue dir (nested queues), checked like the
        queue's own: nothing is ever reached through a symbolic link."""
        self.dir = directory
        self.tickets_dir = os.path.join(directory, "tickets")
        self.choosing_dir = os.path.join(directory, "choosing")
        self.nested_dir = os.path.join(directory, "nested")
        self.above = tuple(above)
        self._warn = warn or (lambda message: None)
        self._warned = set()

    def ensure(self):
        # One level at a time, each checked before the next is made inside it: never through a symlink.
        for d in self.above + (self.dir, self.tickets_dir, self.choosing_dir):
            try:
                os.mkdir(d, 0o700)
            except OSError as e:
                if e.errno != errno.EEXIST:
                    self._assert_real((d,))
                    raise file_system_error("create %s" % d, os.path.dirname(d), e)
            self._assert_real((d,))
        return self

    def exists(self):
        self._assert_real(self.above + (self.dir,))
        return _kind_of(self.dir) == "dir"

    def _assert_real(self, dirs):
        """Each of `dirs` is absent or a real directory; anything else (a symlink above all) is refused."""
        for d in dirs:
            kind = _kind_of(d)
            if kind in ("dir", "absent"):
                continue
            raise SeqTestError(
                "the queue dir %s is damaged (%s is %s; seq-test never follows links in its state dir); remove it "
                "with rm -rf %s (no run of this key may be active) and try again"
                % (self.dir, d, "a symbolic link" if kind == "symlink" else "not a directory", self.dir)
            )

    def _list(self, d):
        self._assert_real((d,))
        try:
            return os.listdir(d)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return []
            raise file_system_error("read %s" % d, d, e)

    def nested(self, token):
        q = Queue(os.path.join(self.nested_dir, token), self._warn, self.above + (self.dir, self.nested_dir))
        q._warned = self._warned
        return q

    def warn_once(self, ident, message):
        if ident in self._warned:
            return
        self._warned.add(ident)
        self._warn(message)

    def enqueue(self, draft):
        """Bakery: announce in choosing/, take 1 + the largest number, write the ticket, withdraw."""
        self.ensure()
        token = draft["token"]
        marker = os.path.join(self.choosing_dir, token + ".json")
        write_atomic(
            self.choosing_dir,
            marker,
            token,
            {"v": PROTOCOL_VERSION, "token": token, "pid": draft["pid"], "start": draft["start"], "boot": draft["boot"]},
        )
        try:
            highest = self._highest()
            if highest >= MAX_NUMBER:
                # The limit (docs/PROTOCOL.md, "Joining"): dead tickets there go first; a live one is refused.
                top = [t for t in self.read().tickets if t.number >= MAX_NUMBER]
                for t in top:
                    if not t.alive:
                        self.remove(t)
                highest = self._highest()
                if highest >= MAX_NUMBER:
                    owner = next((t.pid for t in top if t.alive), "?")
                    raise SeqTestError(
                        "the queue %s has used up its ticket numbers: a run (pid %s) holds number %d, the largest "
                        "there is; numbers start again at 1 once it leaves the queue (end it, or remove its ticket "
                        "if it is not a real run)" % (self.dir, owner, MAX_NUMBER)
                    )
            number = highest + 1
            ticket = dict(draft)
            version = AUTO_PROTOCOL_VERSION if "admission" in draft else PROTOCOL_VERSION
            ticket.update({"v": version, "number": number, "startedAt": None})
            name = ticket_file_name(number, token)
            path = os.path.join(self.tickets_dir, name)
            write_atomic(self.tickets_dir, path, token, ticket)
            return Entry(name, path, number, token, draft["pid"], draft["start"], ticket, True)
        finally:
            unlink_quiet(marker)

    def _highest(self):
        highest = 0
        for name in self._list(self.tickets_dir):
            m = TICKET_NAME.match(name)
            if m:
                highest = max(highest, int(m.group(1)))
        return highest

    def read(self):
        """Reads the queue without changing it; garbage is reported once and judged by its name."""
        # Bakery order: who is choosing first, then the numbers. Read the other way round, a contender that
        # writes its ticket and withdraws its marker between the two listings is seen in neither.
        self._assert_real(self.above)
        choosing = []
        dead_markers = []
        dead_overflow = []
        for name in self._list(self.choosing_dir):
            path = os.path.join(self.choosing_dir, name)
            if name.startswith(".tmp-"):
                _remove_if_writer_dead(path, name)
                continue
            m = MARKER_NAME.match(name)
            if not m:
                self.warn_once(name, "ignoring foreign file %s" % path)
                continue
            (choosing if is_alive(int(m.group(2)), int(m.group(3))) else dead_markers).append(m.group(1))
        table = process_table()
        boot = table.boot_id()
        tickets = []
        for name in self._list(self.tickets_dir):
            path = os.path.join(self.tickets_dir, name)
            if name.startswith(".tmp-"):
                _remove_if_writer_dead(path, name)
                continue
            m = TICKET_NAME.match(name)
            overflow = None if m else OVERFLOW_NAME.match(name)
            if overflow:
                if not is_alive(int(overflow.group(2)), int(overflow.group(3))):
                    dead_overflow.append(path)
                else:
                    self.warn_once(name, "ignoring %s: its number has more than 12 digits" % path)
                continue
            if not m:
                self.warn_once(name, "ignoring foreign file %s" % path)
                continue
            ticket, problem, gone = _read_ticket(path)
            if gone:
                continue  # released between listdir and read
            if problem:
                self.warn_once(name, "ticket %s: %s" % (path, problem))
            if ticket is not None and ticket["v"] > HIGHEST_PROTOCOL_VERSION:
                self.warn_once(
                    name + ":v",
                    "ticket %s is protocol version %s (we speak %d); honouring its place and owner"
                    % (path, ticket["v"], HIGHEST_PROTOCOL_VERSION),
                )
            pid, start = int(m.group(3)), int(m.group(4))
            recorded_boot = ticket.get("boot") if ticket else None
            alive = is_alive(pid, start) and (not recorded_boot or recorded_boot == boot)
            tickets.append(Entry(name, path, int(m.group(1)), m.group(2), pid, start, ticket, alive))
        tickets.sort(key=lambda e: e.name)
        return QueueState(tickets, choosing, dead_markers, dead_overflow)

    def tidy(self, state, reap_run):
        """Removes dead tickets and markers; each dead run's leftovers are ended before its ticket goes."""
        for token in state.dead_markers:
            unlink_quiet(os.path.join(self.choosing_dir, token + ".json"))
        for path in state.dead_overflow:
            unlink_quiet(path)
        dead = [t for t in state.tickets if not t.alive]
        for entry in dead:
            reap_run(entry.token)
            _remove_tree(entry.path)  # a directory named like a ticket is garbage too
            self._remove_nested(entry.token)
        return dead

    def decide(self, state, mine, slots):
        live = [t for t in state.tickets if t.alive]
        index = -1
        for i, t in enumerate(live):
            if t.name == mine.name:
                index = i
                break
        ahead = [] if index == -1 else live[:index]
        blocked = any(token != mine.token for token in state.choosing)
        return Decision(index != -1 and not blocked and len(ahead) < slots, index + 1, ahead, blocked, index == -1)

    def mark_started(self, mine, started_at_ms=None):
        if mine.ticket is None:
            return
        mine.ticket = dict(mine.ticket)
        mine.ticket["startedAt"] = int(time.time() * 1000) if started_at_ms is None else started_at_ms
        write_atomic(self.tickets_dir, mine.path, mine.token, mine.ticket)

    def remove(self, mine):
        """Leaves the queue: our ticket and the nested queue of our run go. Idempotent."""
        unlink_quiet(mine.path)
        self._remove_nested(mine.token)

    def _remove_nested(self, token):
        """nested/<token>, never through a symlink: a nested/ (or a dir above) that is not a real directory
        is left alone."""
        if all(_kind_of(d) == "dir" for d in self.above + (self.dir, self.nested_dir)):
            _remove_tree(os.path.join(self.nested_dir, token))


def _read_ticket(path):
    """(ticket or None, problem or None, gone)."""
    try:
        text = read_regular_file(path)
        if text is None:
            return None, "not a regular file; judged by its name only", False
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None, None, True
        if e.errno == errno.ELOOP:
            return None, "not a regular file; judged by its name only", False
        return None, "cannot read (%s); judged by its name only" % errno.errorcode.get(e.errno, e.errno), False
    ticket = parse_ticket(text)
    if ticket is None:
        return None, "unreadable content (garbage or truncated); judged by its name only", False
    return ticket, None, False


# --- waking -----------------------------------------------------------------------------------------------


class _Inotify(object):
    """inotify through ctypes (Linux): watches that wake a select/poll on one fd. None where unavailable."""

    IN_MODIFY = 0x2
    IN_ATTRIB = 0x4  # a file's link count changed: removed, or renamed over (a ticket rewritten)
    IN_CLOSE_WRITE = 0x8
    IN_MOVED_FROM = 0x40
    IN_MOVED_TO = 0x80
    IN_CREATE = 0x100
    IN_DELETE = 0x200
    IN_DELETE_SELF = 0x400
    IN_MOVE_SELF = 0x800
    IN_IGNORED = 0x8000
    IN_ONLYDIR = 0x01000000
    IN_DONT_FOLLOW = 0x02000000  # never through a symbolic link (docs/PROTOCOL.md, "State dir")
    FILE = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW
    DIR = (
        IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE_SELF
        | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW
    )

    @classmethod
    def open(cls):
        if not sys.platform.startswith("linux") or os.environ.get("SEQ_TEST_NO_INOTIFY") == "1":
            return None
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except Exception:
            return None
        return cls(libc, fd) if fd >= 0 else None

    def __init__(self, libc, fd):
        self._libc = libc
        self.fd = fd

    def add(self, path, mask):
        """A watch descriptor, or the errno (negative) when the watch cannot be set."""
        import ctypes

        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        return wd if wd >= 0 else -(ctypes.get_errno() or errno.EIO)

    def remove(self, wd):
        self._libc.inotify_rm_watch(self.fd, wd)  # fails harmlessly for a watch the kernel already dropped

    def events(self):
        """(wd, mask) of every event queued so far."""
        import struct

        found = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return found
            if not data:
                return found
            offset = 0
            while offset + 16 <= len(data):
                wd, mask, _cookie, size = struct.unpack_from("iIII", data, offset)
                found.append((wd, mask))
                offset += 16 + size

    def close(self):
        try:
            os.close(self.fd)
        except OSError:
            pass


def pidfd_waiter(pid):
    """A function that blocks until the process `pid` has ended and returns True, or None where that cannot be
    waited for without polling (no os.pidfd_open: Python < 3.9, Linux < 5.3, not Linux; or no such process).
    The caller checks, after opening, that `pid` is still the process it means (a pid may be reused)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd = pidfd_open(pid)
    except OSError:
        return None

    def wait():
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.poll()
            return True
        except (OSError, ValueError):
            return False

    return wait


class Waker(object):
    """Sleeps in the kernel until something that can end our wait happens (docs/process-tree.md, "Waiting
    without periodic work"), as @seq-test/core's Waker does:

    - inotify on the ticket just ahead of ours (every ticket ahead with `slots` > 1), on our own ticket (gone:
      we join again) and on choosing/ once we are next;
    - a pidfd (os.pidfd_open, Python 3.9+, Linux 5.3+) per owner we depend on: those of the watched tickets
      ahead, and of live choosing markers once we are next. A SIGKILLed owner changes no file.

    While that covers everything, `wait` has no timeout at all. Wherever it does not (no inotify: macOS,
    SEQ_TEST_NO_INOTIFY=1, watch limits; no pidfd_open: Python < 3.9, old kernels; an owner reported ended
    that still looks alive; `poll_always`: "slots": "auto", where memory changes no file) it polls: every
    `poll` seconds when next, every IDLE_POLL_SECONDS further back (docs/PROTOCOL.md, "Deciding").
    """

    def __init__(self, queue, poll=POLL_SECONDS, poll_always=False):
        self.queue = queue
        self.poll = poll
        self.poll_always = poll_always
        self.inotify = _Inotify.open()
        self.files = {}  # watched path -> wd
        self.choosing = None  # wd of the choosing/ watch
        self.pidfds = {}  # (pid, start) -> pidfd
        self.ended = set()  # owners whose end we were told of (or found): never watched again
        self.depends_on = ()
        self.blind = False  # a watch we wanted could not be set
        self.idle = False

    @property
    def fd(self):
        return self.inotify.fd if self.inotify is not None else None

    @property
    def covered(self):
        """True while an event will tell us of everything that can end our wait: no timer is needed."""
        return (
            not self.poll_always
            and self.inotify is not None
            and not self.blind
            and all(owner in self.pidfds for owner in self.depends_on)
        )

    def watch_for(self, ahead, slots, own, choosers):
        """Watches what can end the wait of our ticket `own` (an Entry) with the live `ahead` (Entries, in
        queue order) in front of it and `choosers` ((pid, start) of the live choosing markers not ours).
        Returns True when it began to watch something it did not watch before: the caller reads the queue
        once more before it sleeps, as a change between its last read and the new watch sent no event."""
        self.idle = len(ahead) > slots
        if self.inotify is None:
            return False
        self.blind = False
        began = False
        watched = ahead[-1:] if slots == 1 else ahead  # the others can only leave before it matters
        owners = [(t.pid, t.start) for t in watched]
        wanted = set(t.path for t in watched)
        wanted.add(own.path)
        for path in list(self.files):
            if path not in wanted:
                self.inotify.remove(self.files.pop(path))
        for path in wanted:
            if path not in self.files:
                wd = self.inotify.add(path, _Inotify.FILE)
                if wd >= 0:
                    self.files[path] = wd
                elif wd != -errno.ENOENT:
                    self.blind = True  # ENOENT: gone already, which the next read sees
                began = True
        if len(ahead) <= slots:
            # Next: a newcomer choosing its number holds us back until it has one.
            owners.extend(choosers)
            if self.choosing is None:
                wd = self.inotify.add(self.queue.choosing_dir, _Inotify.DIR)
                if wd >= 0:
                    self.choosing = wd
                else:
                    self.blind = True
                began = True
        elif self.choosing is not None:
            self.inotify.remove(self.choosing)
            self.choosing = None
        # An owner we were told has ended but that still looks alive stays in depends_on without a pidfd:
        # not covered, so the poll judges it.
        self.depends_on = owners
        return self._watch_owners([o for o in owners if o not in self.ended]) or began

    def _watch_owners(self, owners):
        """A pidfd per owner; True when one was opened (or found ended: read again)."""
        wanted = set(owners)
        for owner in list(self.pidfds):
            if owner not in wanted:
                os.close(self.pidfds.pop(owner))
        opened = False
        for owner in wanted:
            if owner in self.pidfds:
                continue
            pidfd_open = getattr(os, "pidfd_open", None)
            if pidfd_open is None:
                return opened  # Python < 3.9 (or not Linux): not covered, the poll finds a dead owner
            try:
                fd = pidfd_open(owner[0])
            except OSError as e:
                if e.errno != errno.ESRCH:
                    return opened  # ENOSYS (Linux < 5.3), EMFILE, ...: not covered
                self.ended.add(owner)
                opened = True
                continue
            if not is_alive(owner[0], owner[1]):
                # It ended before the pidfd was opened, and the pid may belong to another process now.
                os.close(fd)
                self.ended.add(owner)
            else:
                self.pidfds[owner] = fd
            opened = True
        return opened

    def wait(self, max_seconds):
        """Sleeps until something watched happens, or at most `max_seconds` (None or inf: no bound), or
        less where the watches do not cover everything (see the class)."""
        bound = float("inf") if max_seconds is None else max_seconds
        if not self.covered:
            bound = min(IDLE_POLL_SECONDS if self.idle else self.poll, bound)
        timeout = None if bound == float("inf") else max(0.001, bound)
        if self.inotify is None:
            time.sleep(timeout)
            return
        by_fd = dict((fd, owner) for owner, fd in self.pidfds.items())
        try:
            poller = select.poll()
            poller.register(self.inotify.fd, select.POLLIN)
            for fd in by_fd:
                poller.register(fd, select.POLLIN)
            ready = [fd for fd, _ in poller.poll(None if timeout is None else int(timeout * 1000) or 1)]
        except (OSError, ValueError):
            time.sleep(timeout if timeout is not None else self.poll)
            return
        for fd in ready:
            owner = by_fd.get(fd)
            if owner is not None:
                # Ended: the next read finds its ticket dead. Its pidfd stays readable: never watch it again.
                os.close(self.pidfds.pop(owner))
                self.ended.add(owner)
        if self.inotify.fd in ready:
            self._read_events()

    def _read_events(self):
        """A watched file that changed is watched no more: it is gone, or was renamed over (a ticket
        rewritten when its owner starts holding); the next watch_for watches what is there now."""
        events = self.inotify.events()
        changed = set(wd for wd, _ in events)
        for path, wd in list(self.files.items()):
            if wd in changed:
                del self.files[path]
                self.inotify.remove(wd)
        if any(wd == self.choosing and mask & _Inotify.IN_IGNORED for wd, mask in events):
            self.choosing = None  # the directory went (the queue dir removed by hand): set it again

    def close(self):
        for fd in self.pidfds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.pidfds.clear()
        if self.inotify is not None:
            self.inotify.close()
            self.inotify = None


# --- formatting (same text as the CLI) --------------------------------------------------------------------


def _js_round(x):
    """Math.round: halves go up (Python's round() goes to even)."""
    import math

    return int(math.floor(x + 0.5))


def format_duration(ms):
    if ms < 1000:
        return "%d ms" % _js_round(ms)
    seconds = ms / 1000.0
    if seconds < 60:
        return "%.1f s" % seconds
    minutes = int(seconds // 60)
    if minutes < 60:
        return "%dm%02ds" % (minutes, int(seconds % 60))
    return "%dh%02dm" % (minutes // 60, minutes % 60)


def _truncate(text, limit):
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def describe_wait(key, position, queue_length, ahead, waited_ms, nested, now_ms=None, admission=None):
    """The queue line, word for word what `seq-test run` prints (packages/cli/src/wait-line.ts)."""
    now_ms = time.time() * 1000 if now_ms is None else now_ms
    holder = ahead[0] if ahead else None
    if holder is not None:
        started = holder.started_at
        text = "%s by pid %d" % ("held" if started else "next", holder.pid)
        if holder.command:
            text += " (%s)" % _truncate(holder.command, 60)
        if started:
            text += " for %s" % format_duration(now_ms - started)
    else:
        text = "another process is joining"
    return "waiting for the %slock on %s: position %d of %d, %s; waited %s%s" % (
        "nested " if nested else "",
        key,
        position,
        queue_length,
        text,
        format_duration(waited_ms),
        "; " + admission if admission else "",
    )


class WaitLine(object):
    """On a terminal one line rewritten in place; elsewhere one line when waiting starts (as the CLI does)."""

    def __init__(self, stream=None, quiet=False):
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.shown = False
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False

    @property
    def report_every(self):
        """acquire()'s `wait_report`: frequent updates for a line redrawn on a terminal; None elsewhere (the
        line is printed once), so that the wait does no periodic work for it."""
        return WAIT_REPORT_SECONDS if self.tty and not self.quiet else None

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def update(self, info):
        if self.quiet:
            return
        text = describe_wait(**info)
        if self.tty:
            self._write("\r\x1b[2K%s %s" % (PREFIX, text))
            self.shown = True
        elif not self.shown:
            self._write("%s %s\n" % (PREFIX, text))
            self.shown = True

    def done(self, message):
        if self.quiet or not self.shown:
            return
        if self.tty:
            self._write("\r\x1b[2K")
        if message:
            self._write("%s %s\n" % (PREFIX, message))
        self.shown = False


# --- reaping ----------------------------------------------------------------------------------------------


def find_leftovers(token, live_runs=()):
    """Processes of this uid (never us) left by the dead run `token`: @seq-test/core's findLeftovers rule.

    A sweep for one dead run's token, so not limited to a state dir (docs/PROTOCOL.md, "Leftovers and state
    dirs"): the token is that run's alone. This module has no sweep that names no run.

    A process answers to the innermost live run of its chain, so it is a leftover of `token` only when that
    token comes after every live one; and never while it owns a live run its chain does not name (a run
    started from a shell that kept a dead run's token). Live runs: every chain in the table plus
    `live_runs` ((token, (pid, start)) of live tickets: a waiting run has started nothing with its token).
    """
    table = process_table()
    me = os.getpid()
    procs = [p for p in table.list() if p.pid != me and not p.gone]
    chains = {p.pid: parse_chain(table.env_value(p.pid, TOKEN_ENV)) for p in procs}
    alive = {}

    def live(t):
        if t not in alive:
            owner = parse_token(t)
            alive[t] = is_alive(owner[0], owner[1])
        return alive[t]

    owners = {}  # (pid, start) of a live run's owner -> its token
    for value, owner in live_runs:
        owners[tuple(owner)] = value
    for chain in chains.values():
        for t in chain:
            if live(t):
                owners[parse_token(t)] = t

    def owns_another_live_run(p, chain):
        value = owners.get((p.pid, p.start))
        return value is not None and value not in chain

    found = []
    for p in procs:
        chain = chains[p.pid]
        innermost_live = len(chain) - 1
        while innermost_live >= 0 and not live(chain[innermost_live]):
            innermost_live -= 1
        if token in chain[innermost_live + 1 :] and table.is_ours(p.pid) and not owns_another_live_run(p, chain):
            found.append(p)
    return found


def end_processes(targets, grace=1.0):
    """TERM, then SIGKILL after `grace` seconds to what is left; every signal re-checks pid + start time.

    Returns [(pid, command, signal name)] for each process that got a signal.
    """
    table = process_table()
    ended = []
    for info in targets:
        command = table.command_line(info.pid)
        if signal_identity(info.pid, info.start, signal.SIGTERM):
            ended.append([info, command, "SIGTERM"])
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(is_alive(e[0].pid, e[0].start) for e in ended):
        time.sleep(0.02)
    for e in ended:
        if signal_identity(e[0].pid, e[0].start, signal.SIGKILL):
            e[2] = "SIGKILL"
    return [(e[0].pid, e[1], e[2]) for e in ended]


# --- the lock ---------------------------------------------------------------------------------------------


# Every queue place this process has or is taking, by token: released by release_all() (at interpreter exit,
# and by callers about to die by a signal, when atexit does not run).
_joining = {}
_held = {}


class Lock(object):
    """A held place in a queue. `release()` leaves it (idempotent; also runs at interpreter exit)."""

    def __init__(self, key, token, chain, nested, waited_ms, queue, entry, auto=None):
        self.key = key
        #: AutoAdmission in `"slots": "auto"` mode: measures our tree while we hold
        self.auto = auto
        self.token = token
        #: the SEQ_TEST_TOKEN value for everything this run starts
        self.chain = chain
        self.nested = nested
        self.waited_ms = waited_ms
        self.queue = queue
        self.entry = entry
        self.released = False
        _held[token] = self

    def release(self, completed=False):
        """`completed`: the run ended on its own; in auto mode its memory peak is then recorded."""
        if self.released:
            return
        self.released = True
        if self.auto is not None:
            problem = self.auto.finished(completed)
            if problem:
                sys.stderr.write("%s warning: %s\n" % (PREFIX, problem))
        self.queue.remove(self.entry)
        _held.pop(self.token, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def withdraw_token(queue, token):
    """Removes whatever `token` has in `queue` (choosing marker, ticket, nested queue), found by name: safe
    to call at any point of joining, even when an interrupt left us not knowing how far it got."""
    unlink_quiet(os.path.join(queue.choosing_dir, token + ".json"))
    suffix = "-" + token + ".json"
    if _kind_of(queue.tickets_dir) == "dir":
        for name in _list_dir(queue.tickets_dir):
            if name.endswith(suffix):
                unlink_quiet(os.path.join(queue.tickets_dir, name))
    queue._remove_nested(token)


def release_all():
    """Leaves every queue this process holds a place in or is joining. Idempotent."""
    for token, queue in list(_joining.items()):
        withdraw_token(queue, token)
        _joining.pop(token, None)
    for lock in list(_held.values()):
        lock.release()


atexit.register(release_all)


def find_queue(top, chain):
    """Walks the chain, outermost first: a token holding a live ticket here leads into its nested queue."""
    queue = top
    nested = False
    for token in parse_chain(chain):
        state = queue.read()
        if any(t.token == token and t.alive for t in state.tickets):
            queue = queue.nested(token).ensure()
            nested = True
    return queue, nested


def write_key_file(directory, key):
    """The informational key file, written once: never through a symlink, never over anything."""
    path = os.path.join(directory, "key")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            # The key's bytes as they are (a path that is not valid UTF-8 included): the file is for people.
            os.write(fd, os.fsencode(key) + b"\n")
        finally:
            os.close(fd)
    except OSError:
        pass


def resolve_lock_settings(key=None, slots=None, cwd=None, env=None):
    """(key, slots) the way `seq-test run` picks them: --key, else $SEQ_TEST_KEY, else the project's
    seq-test config (.seqtestrc.json / package.json "seqTest"), else the protocol's default; slots: given,
    else the config's, else 1."""
    env = os.environ if env is None else env
    settings = None
    if not key and not env.get("SEQ_TEST_KEY") or slots is None:
        settings = load_project_settings(cwd or os.getcwd()) or {}
    if not key:
        key = env.get("SEQ_TEST_KEY") or (settings or {}).get("key") or project_key(cwd=cwd, env={})
    if slots is None:
        slots = (settings or {}).get("slots") or 1
    return key, slots


def acquire(
    command,
    key=None,
    cwd=None,
    env=None,
    slots=None,
    no_wait=False,
    wait_timeout=None,
    on_wait=None,
    on_warning=None,
    wait_report=WAIT_REPORT_SECONDS,
    poll=POLL_SECONDS,
    reap_grace=1.0,
    impl="python",
    nested_only=False,
    token=None,
    on_enqueue=None,
    auto_what=None,
    project_settings=None,
):
    """Joins the FIFO queue of a key and returns a Lock once we hold a slot (key and slots default as in
    resolve_lock_settings()).

    A process whose SEQ_TEST_TOKEN chain names a live holder of this key queues among that holder's nested
    runs instead, so it never waits for its own ancestor. `nested_only`: return None unless nested.
    With slots "auto", `auto_what` is what the fingerprint is made of and `project_settings` the settings
    (maxSlots, memoryBudget) to use instead of those found from cwd.
    `on_enqueue(entry)` is called once our ticket is written (again after a re-join); `on_wait(info)` when
    waiting starts and about every `wait_report` seconds, `info` holding the keyword arguments of
    describe_wait(). `wait_report` None: no live line wants updates (WaitLine.report_every off a terminal),
    so nothing wakes the wait on a timer for it: on_wait is then called when waiting starts and, at most every
    IDLE_POLL_SECONDS, when something changed. Raises SeqTestError (122 wait timeout, 123 busy with no_wait,
    125 state dir refused); KeyboardInterrupt and other exceptions withdraw the ticket before propagating.
    """
    env = os.environ if env is None else env
    if not platform_supported():
        raise SeqTestError(unsupported_message())
    key, slots = resolve_lock_settings(key, slots, cwd, env)
    warn = on_warning or (lambda message: None)
    state_dir = ensure_state_dir(env)
    top = Queue(os.path.join(state_dir, key_dir_name(key)), warn).ensure()
    write_key_file(top.dir, key)
    queue, nested = find_queue(top, trusted_chain(env.get(TOKEN_ENV)))
    if nested_only and not nested:
        return None
    auto = None
    if nested:
        slots = 1
    elif slots == "auto":
        # Protocol version 2: memory-aware admission. The fingerprint: what runs and where (the caller's
        # `auto_what`, e.g. the pytest plugin's runner and arguments), the settings from the project's config:
        # the caller's `project_settings` (the pytest plugin finds them from rootdir), else found from cwd.
        settings = project_settings if project_settings is not None else load_project_settings(cwd or os.getcwd()) or {}
        what = auto_what or {"argv": list(sys.argv), "cwd": os.path.realpath(cwd or os.getcwd()), "runner": impl}
        auto = AutoAdmission(top.dir, what, settings.get("maxSlots"), settings.get("memoryBudget"), warn=warn)
        slots = auto.max_slots
    table = process_table()
    me = identity_of(os.getpid())
    if me is None:
        raise SeqTestError("cannot read our own process entry (is /proc mounted?)")
    token = token or create_token(*me)

    def reap_run(dead_token):
        live_runs = [(t.token, (t.pid, t.start)) for t in queue.read().tickets if t.alive]
        leftovers = find_leftovers(dead_token, live_runs)
        if leftovers:
            ended = end_processes(leftovers, reap_grace)
            warn(
                "a run that died left %d process(es) behind; ended: %s"
                % (len(ended), ", ".join("%d (%s)" % (pid, cmd) for pid, cmd, _ in ended))
            )

    draft = {
        "token": token,
        "pid": me[0],
        "start": me[1],
        "boot": table.boot_id(),
        "slots": slots,
        "key": key,
        "command": command,
        "cwd": cwd or os.getcwd(),
        "enqueuedAt": int(time.time() * 1000),
        "impl": impl,
    }
    if auto is not None:
        draft["admission"] = auto.ticket_field()
    parent = parent_field()
    if parent is not None:
        draft["parent"] = parent
    began = time.monotonic()
    waker = None  # made on the first wait: an uncontended lock needs no watch (closing inotify costs ms)
    last_report = None
    live_line = on_wait is not None and wait_report is not None
    report_every = wait_report if live_line else IDLE_POLL_SECONDS
    _joining[token] = queue
    try:
        mine = queue.enqueue(draft)
        if on_enqueue is not None:
            on_enqueue(mine)
        while True:
            state = queue.read()
            if state.dead_markers or state.dead_overflow or any(not t.alive for t in state.tickets):
                queue.tidy(state, reap_run)
                continue
            decision = queue.decide(state, mine, slots)
            if decision.lost:
                warn("our ticket vanished from the queue; joining again at the end")
                draft["enqueuedAt"] = int(time.time() * 1000)
                mine = queue.enqueue(draft)
                if on_enqueue is not None:
                    on_enqueue(mine)
                continue
            if auto is not None and mine.ticket is not None and auto.relearn(decision.ahead):
                # Write + rename by the owner, as startedAt: the runs behind us read our new prediction.
                draft["admission"] = auto.ticket_field()
                mine.ticket = dict(mine.ticket, admission=draft["admission"])
                try:
                    write_atomic(queue.tickets_dir, mine.path, mine.token, mine.ticket)
                except (OSError, SeqTestError) as error:
                    warn("could not write the learned memory prediction into our ticket: %s" % error)
            verdict = auto.admit(decision.ahead, mine.pid) if decision.holding and auto is not None else None
            if decision.holding and (verdict is None or verdict[0]):
                queue.mark_started(mine)
                chain = extend_chain(trusted_chain(env.get(TOKEN_ENV)), token)
                lock = Lock(key, token, chain, nested, int((time.monotonic() - began) * 1000), queue, mine, auto)
                if auto is not None:
                    auto.started()
                _joining.pop(token, None)
                return lock
            waited = time.monotonic() - began
            if no_wait:
                first = decision.ahead[0] if decision.ahead else None
                what = (
                    "held by pid %d%s" % (first.pid, ": " + first.command if first.command else "")
                    if first
                    else "another process is joining"
                )
                if verdict is not None:
                    what = verdict[1]
                raise SeqTestError(
                    "the lock for %s is busy (%s) and --no-wait was given" % (key, what), EXIT_LOCK_BUSY
                )
            if wait_timeout is not None and waited >= wait_timeout:
                raise SeqTestError(
                    "gave up after waiting %.1f s for the lock for %s (--wait-timeout)" % (waited, key),
                    EXIT_WAIT_TIMEOUT,
                )
            if on_wait is not None and (last_report is None or waited - last_report >= report_every):
                last_report = waited
                on_wait(
                    {
                        "key": key,
                        "position": decision.position,
                        "queue_length": sum(1 for t in state.tickets if t.alive),
                        "ahead": decision.ahead,
                        "waited_ms": waited * 1000,
                        "nested": nested,
                        "admission": verdict[1] if verdict is not None else None,
                    }
                )
            remaining = float("inf") if wait_timeout is None else wait_timeout - waited
            if waker is None:
                # Memory changes no file: with "slots": "auto" the waker polls as the protocol says.
                waker = Waker(queue, poll, poll_always=auto is not None)
            choosers = [parse_token(t) for t in state.choosing if t != mine.token]
            if waker.watch_for(decision.ahead, slots, mine, choosers):
                continue  # look again: a change between our read and the new watch sent no event
            # A live line is redrawn every `wait_report` (further back than next, every 2 s); without one, only
            # what can end the wait (or --wait-timeout) wakes us, and where the watches do not cover that, the
            # waker's poll.
            if live_line:
                remaining = min(remaining, IDLE_POLL_SECONDS if waker.idle else wait_report)
            waker.wait(remaining)
    except BaseException:
        # An interrupt may land anywhere, even between writing the ticket and knowing its name: withdraw
        # by token, and if a held Lock was already made, release it too.
        withdraw_token(queue, token)
        _joining.pop(token, None)
        held = _held.get(token)
        if held is not None:
            held.release()
        raise
    finally:
        if waker is not None:
            waker.close()


# --- memory-aware admission (protocol version 2, `"slots": "auto"`) --------------------------------------
# docs/PROTOCOL.md, "Version 2"; @seq-test/core's memory/ modules implement the same, and the conformance
# tests run both on the same inputs. Kept apart from the version-1 code above: acquire() calls in here only
# when slots is "auto".

AUTO_PROTOCOL_VERSION = 2
HIGHEST_PROTOCOL_VERSION = AUTO_PROTOCOL_VERSION
HISTORY_VERSION = 2
HISTORY_KEEP = 20
PREDICT_FROM = 10
PREDICT_PERCENTILE = 0.9
#: The margin from five runs on: 5 % plus the recent peaks' spread (highest - lowest) over p, at most 15 %.
PREDICT_MARGIN = 0.15
PREDICT_MARGIN_LEAST = 0.05
#: The margin with 1, 2, 3, 4 runs known (75 % down by 15 points a run): few runs say little about the next.
PREDICT_MARGINS = (0.75, 0.6, 0.45, 0.3)
MIN_RESERVE = 128 * 1024 * 1024
MAX_PEAK = 2 ** 50
MAX_DURATION = 30 * 24 * 3600 * 1000
MAX_HISTORY_FILE = 256 * 1024
MAX_SAFE_INTEGER = 2 ** 53 - 1
_MEASURES = ("pss", "rss", "mixed")
#: While no ticket ahead changes, a waiting head re-measures the holders' memory at most this often (a tree
#: walk and an smaps_rollup read per process). While holders grow within their predictions the room does not
#: change; what changes it at once (a holder starts, its command ends, it leaves) changes a ticket.
MEASURE_EVERY_SECONDS = 1.0
#: While our prediction is unknown and no ticket ahead changes, a waiter re-reads the history at most this
#: often. The record that makes it known is written by a holder just before it leaves (its ticket goes).
RELEARN_EVERY_SECONDS = 1.0


def pss_of(pid):
    """Pss of one process in bytes (/proc/PID/smaps_rollup), or None when unreadable."""
    smaps = smaps_of(pid)
    return None if smaps is None else smaps[0]


def smaps_of(pid):
    """(Pss, shared anonymous bytes, resident file bytes) of one process, or None when smaps_rollup is unreadable.
    The second is `Anonymous` − `Pss_Anon`, what copy-on-write can still turn private (None before Linux 5.9);
    the third `Rss` − `Anonymous`: files, libraries, shared memory. As @seq-test/core's smapsOf."""
    try:
        with open("/proc/%d/smaps_rollup" % pid, "rb") as f:
            text = f.read().decode("latin-1")
    except OSError:
        return None

    def kb(field):
        m = re.search(r"^%s:\s+(\d+) kB$" % field, text, re.M)
        return int(m.group(1)) * 1024 if m else None

    rss, pss, anonymous, pss_anon = kb("Rss"), kb("Pss"), kb("Anonymous"), kb("Pss_Anon")
    if pss is None:
        return None
    return (
        pss,
        None if anonymous is None or pss_anon is None else max(0, anonymous - pss_anon),
        None if rss is None or anonymous is None else max(0, rss - anonymous),
    )


def _statm_of(pid):
    """(RSS, resident file bytes) of one process from the kernel's counters (/proc/PID/statm: no page-table
    walk, cheap enough for every sample), or None. As @seq-test/core's fileRssOf."""
    try:
        with open("/proc/%d/statm" % pid, "rb") as f:
            fields = f.read().split()
        page = os.sysconf("SC_PAGE_SIZE")
        return int(fields[1]) * page, int(fields[2]) * page
    except (OSError, ValueError, IndexError):
        return None


def _rss_of(pid):
    statm = _statm_of(pid)
    return None if statm is None else statm[0]


def descendants_of(root):
    """A process and its descendants, from /proc/PID/task/TID/children."""
    seen = []
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        try:
            threads = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in threads:
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid), "rb") as f:
                    stack.extend(int(c) for c in f.read().split())
            except (OSError, ValueError):
                pass
    return seen


def tree_memory(root):
    """(bytes, measure) of a process tree: Pss where readable, else RSS ("pss", "rss" or "mixed")."""
    return _memory_of(descendants_of(root))


def _memory_of(pids):
    """(bytes, measure) of these processes: Pss where readable, else RSS."""
    total = 0
    kinds = set()
    for pid in pids:
        smaps = smaps_of(pid)
        if smaps is not None:
            total += smaps[0]
            kinds.add("pss")
            continue
        one = _rss_of(pid)
        if one is not None:
            total += one
            kinds.add("rss")
    return total, _measure_of(kinds)


def _measure_of(kinds):
    return "mixed" if len(kinds) == 2 else "rss" if kinds == {"rss"} else "pss"


def _read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, ValueError):
        return None


def available_memory():
    """{"bytes", "source", "total"}: MemAvailable, or a memory cgroup's headroom when that is smaller."""
    meminfo = _read_text("/proc/meminfo") or ""
    avail = re.search(r"^MemAvailable:\s+(\d+) kB$", meminfo, re.M)
    total = re.search(r"^MemTotal:\s+(\d+) kB$", meminfo, re.M)
    if not avail or not total:
        return None
    best = {"bytes": int(avail.group(1)) * 1024, "source": "MemAvailable", "total": int(total.group(1)) * 1024}

    def number(text):
        try:
            n = int((text or "").strip())
            return n if n >= 0 else None
        except ValueError:
            return None

    def stat_field(text, field):
        m = re.search(r"^%s (\d+)$" % field, text or "", re.M)
        return int(m.group(1)) if m else 0

    for line in (_read_text("/proc/self/cgroup") or "").splitlines():
        m = re.match(r"^\d+:([^:]*):(.*)$", line)
        if not m:
            continue
        controllers, path = m.group(1), m.group(2)
        v1 = "memory" in controllers.split(",")
        if not v1 and controllers != "":
            continue
        d = path
        while True:
            if v1:
                base = os.path.join("/sys/fs/cgroup/memory", d.lstrip("/"))
                limit = number(_read_text(os.path.join(base, "memory.limit_in_bytes")))
                usage = number(_read_text(os.path.join(base, "memory.usage_in_bytes")))
                inactive = stat_field(_read_text(os.path.join(base, "memory.stat")), "total_inactive_file")
                label = "cgroup v1 %s" % d
            else:
                base = os.path.join("/sys/fs/cgroup", d.lstrip("/"))
                raw = (_read_text(os.path.join(base, "memory.max")) or "").strip()
                limit = None if raw in ("", "max") else number(raw)
                usage = number(_read_text(os.path.join(base, "memory.current")))
                inactive = stat_field(_read_text(os.path.join(base, "memory.stat")), "inactive_file")
                label = "cgroup v2 %s" % d
            if limit is not None and usage is not None and limit < 2 ** 60:
                headroom = max(0, limit - (usage - inactive))
                if headroom < best["bytes"]:
                    best = {"bytes": headroom, "source": label, "total": limit}
            if d in ("/", "", "."):
                break
            d = os.path.dirname(d)
    return best


def default_reserve(total):
    return max(MIN_RESERVE, int(round(total * 0.05)))


def _format_bytes(n):
    """As @seq-test/core's formatBytes."""
    if n < 1024:
        return "%d B" % n
    units = ["KiB", "MiB", "GiB", "TiB"]
    value = n / 1024.0
    unit = 0
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024.0
        unit += 1
    return ("%.1f %s" if value < 10 else "%.0f %s") % (_js_round_places(value, 1 if value < 10 else 0), units[unit])


def _js_round_places(value, places):
    # toFixed rounds half away from zero on the decimal value it sees; close enough to match formatBytes.
    factor = 10 ** places
    return _js_round(value * factor) / float(factor)


def _valid_figure(n):
    return isinstance(n, (int, float)) and not isinstance(n, bool) and n == n and n not in (float("inf"),) and n >= 0


def decide_admission(
    max_slots, waiting_ahead, holders, head_predicted, available, reserve, budget=None, head_current=None
):
    """The admission rule, word for word as @seq-test/core's decideAdmission: (admit, reason, text).

    holders: [(predicted or None, current or None[, command_ended])]. Rules in order: fifo, max-slots, alone,
    unknown-head, unknown-holder, then memory: admitted when need <= free - reserve - growth, growth
    counting only the holders whose command still runs (one whose command ended, its leftovers lingering,
    cannot grow to its peak any more), need being head_predicted less head_current (the head's own tree now,
    already out of the available figure) without a budget, all of head_predicted with one. Garbage never admits.
    """
    def whole(n):
        return isinstance(n, int) and not isinstance(n, bool)

    if not whole(max_slots) or max_slots < 1 or not whole(waiting_ahead) or waiting_ahead < 0:
        return False, "invalid", "invalid admission settings; waiting"
    if waiting_ahead > 0:
        return False, "fifo", "%d run(s) ahead still waiting (first in, first out)" % waiting_ahead
    if len(holders) >= max_slots:
        return False, "max-slots", "%d run(s) hold, the most allowed (--max-slots %d)" % (len(holders), max_slots)
    if not holders:
        return True, "alone", "nothing else holds"
    if head_predicted is None:
        return False, "unknown-head", "no memory history for this command yet: it runs alone once"
    holders = [(h[0], h[1], len(h) > 2 and bool(h[2])) for h in holders]
    growing = [(p, c) for p, c, ended in holders if not ended]
    if any(p is None for p, _ in growing):
        return False, "unknown-holder", "a holder has no memory history: waiting until it ends"
    figures = [head_predicted, reserve] + [p for p, _ in growing] + [0 if c is None else c for _, c, _ in holders]
    head_current = 0 if budget is not None or head_current is None else head_current
    figures += [budget] if budget is not None else [available, head_current]
    if not all(_valid_figure(f) for f in figures):
        return False, "invalid", "a memory figure is unreadable or invalid; waiting"
    growth = sum(max(0, p - (c or 0)) for p, c in growing)
    free = budget - sum(c or 0 for _, c, _ in holders) if budget is not None else available
    room = free - reserve - growth
    need = max(0, head_predicted - head_current)
    text = "needs ~%s, %s available above the reserve" % (_format_bytes(need), _format_bytes(max(0, room)))
    if growth > 0:
        text += " (holders still expected to grow by %s)" % _format_bytes(growth)
    return (True, "fits", text) if need <= room else (False, "memory", text)


def fingerprint_of(argv, cwd, runner=None, config=None):
    """First 24 hex digits of SHA-256 of JSON [argv, cwd, runner, config] (as JSON.stringify writes it)."""
    import hashlib

    canonical = json.dumps([list(argv), cwd, runner, config], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


def _valid_run(entry):
    if not isinstance(entry, dict):
        return None

    def whole(n, most):
        return isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= most

    if not whole(entry.get("peakBytes"), MAX_PEAK) or entry["peakBytes"] == 0:
        return None
    if not whole(entry.get("durationMs"), MAX_DURATION) or not whole(entry.get("endedAt"), MAX_SAFE_INTEGER):
        return None
    if entry.get("measure") not in _MEASURES:
        return None
    return {k: entry[k] for k in ("peakBytes", "durationMs", "endedAt", "measure")}


def _history_dir_problem(directory):
    try:
        st = os.lstat(directory)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return "absent"
        return "%s: cannot be read (%s); memory history ignored" % (directory, errno.errorcode.get(e.errno, e.errno))
    if stat_mod.S_ISLNK(st.st_mode):
        return "%s is a symbolic link; memory history ignored (remove it)" % directory
    if not stat_mod.S_ISDIR(st.st_mode):
        return "%s is not a directory; memory history ignored (remove it)" % directory
    if st.st_uid != os.getuid():
        return "%s belongs to another user; memory history ignored" % directory
    if st.st_mode & 0o022:
        return "%s is group or world writable; memory history ignored (chmod 700 it)" % directory
    return None


def read_history(queue_dir, fingerprint):
    """(runs, problems): valid runs newest last; anything wrong reported, never raised."""
    if not re.match(r"^[0-9a-f]{24}$", fingerprint or ""):
        return [], ["invalid fingerprint %s" % json.dumps(fingerprint)]
    directory = os.path.join(queue_dir, "history")
    problem = _history_dir_problem(directory)
    if problem == "absent":
        return [], []
    if problem:
        return [], [problem]
    path = os.path.join(directory, fingerprint + ".json")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return [], []
        if e.errno == errno.ELOOP:
            return [], ["%s: a symbolic link; ignored" % path]
        return [], ["%s: cannot be read (%s); ignored" % (path, errno.errorcode.get(e.errno, e.errno))]
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            return [], ["%s: not a regular file; ignored" % path]
        if st.st_uid != os.getuid():
            return [], ["%s: another user's file; ignored" % path]
        if st.st_size > MAX_HISTORY_FILE:
            return [], ["%s: larger than %d bytes; ignored" % (path, MAX_HISTORY_FILE)]
        data = b""
        while len(data) < st.st_size:
            chunk = os.read(fd, st.st_size - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    try:
        record = json.loads(data.decode("utf-8"))
    except ValueError:
        return [], ["%s: not valid JSON; ignored" % path]
    if not isinstance(record, dict):
        return [], ["%s: not a JSON object; ignored" % path]
    if record.get("v") != HISTORY_VERSION or isinstance(record.get("v"), bool):
        return [], [
            "%s: history of protocol version %s (we read %d); ignored"
            % (path, json.dumps(record.get("v")), HISTORY_VERSION)
        ]
    if record.get("fingerprint") != fingerprint or not isinstance(record.get("runs"), list):
        return [], ["%s: fingerprint or runs missing or wrong; ignored" % path]
    runs = []
    bad = 0
    for entry in record["runs"][-HISTORY_KEEP:]:
        run = _valid_run(entry)
        if run is None:
            bad += 1
        else:
            runs.append(run)
    problems = ["%s: %d invalid run entr%s ignored" % (path, bad, "y" if bad == 1 else "ies")] if bad else []
    return runs, problems


def record_run(queue_dir, what, run):
    """Appends a finished run to its fingerprint's history; returns a problem (str) or None, never raises."""
    checked = _valid_run(run)
    if checked is None:
        return "not recording an invalid run (%s)" % json.dumps(run)
    fingerprint = fingerprint_of(what["argv"], what["cwd"], what.get("runner"), what.get("config"))
    directory = os.path.join(queue_dir, "history")
    try:
        problem = _history_dir_problem(directory)
        if problem == "absent":
            # Two first runs may both make it: the second one checks the first's like any other.
            try:
                os.mkdir(directory, 0o700)
            except OSError as e:
                if e.errno != errno.EEXIST:
                    raise
            problem = _history_dir_problem(directory)
        if problem:
            return (
                "%s vanished while being made; this run is not recorded" % directory if problem == "absent" else problem
            )
        stored = {"argv": list(what["argv"]), "cwd": what["cwd"]}
        for field in ("runner", "config"):
            if what.get(field) is not None:
                stored[field] = what[field]
        me = identity_of(os.getpid())
        writer = create_token(*me) if me else "%d.0.000000" % os.getpid()
        lock = os.path.join(directory, fingerprint + ".lock")
        busy = _take_history_lock(directory, lock, writer)
        if busy:
            return busy
        try:
            runs, _ = read_history(queue_dir, fingerprint)
            runs = (runs + [checked])[-HISTORY_KEEP:]
            write_atomic(
                directory,
                os.path.join(directory, fingerprint + ".json"),
                writer,
                {"v": HISTORY_VERSION, "fingerprint": fingerprint, "what": stored, "runs": runs},
            )
        finally:
            _release_history_lock(lock, writer)
        return None
    except OSError as e:
        return "could not record memory history in %s: %s" % (directory, errno.errorcode.get(e.errno, e))


#: How long a writer waits for another writer of the same history before it skips recording its run, and
#: how often it looks (a writer holds the lock for a read, a JSON write and a rename: about a millisecond).
HISTORY_LOCK_WAIT = 2.0
_HISTORY_LOCK_POLL = 0.003


def _take_history_lock(directory, lock, writer):
    """Serializes the read-append-rename of one history (docs/PROTOCOL.md, History, Writing): the lock is a
    file holding the writer's token, put in place whole by link() (which fails if it exists). One whose owner
    is dead is moved aside and removed. Waits at most HISTORY_LOCK_WAIT; returns None once held, else the
    problem (the run is then not recorded). Same rule as @seq-test/core."""
    temp = os.path.join(directory, ".tmp-%s-lock" % writer)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.write(fd, writer.encode("ascii"))
    finally:
        os.close(fd)
    try:
        deadline = time.monotonic() + HISTORY_LOCK_WAIT
        while True:
            try:
                os.link(temp, lock)
                return None
            except OSError as e:
                if e.errno != errno.EEXIST:
                    raise
            owner = _history_lock_owner(lock)
            if owner == "dead":
                _remove_dead_history_lock(directory, lock, writer)
            elif time.monotonic() >= deadline:
                return "memory history %s is held by %s for over %d ms; this run is not recorded" % (
                    lock,
                    owner or "another writer",
                    int(HISTORY_LOCK_WAIT * 1000),
                )
            else:
                time.sleep(_HISTORY_LOCK_POLL)
    finally:
        unlink_quiet(temp)


def _history_lock_owner(lock):
    """The lock's token, "dead" when its owner is gone or it is not a lock we wrote (a link, garbage), None
    when absent."""
    try:
        text = read_regular_file(lock)
    except OSError as e:
        return None if e.errno == errno.ENOENT else "dead"
    owner = parse_token(text.strip()) if text is not None else None
    return text.strip() if owner and is_alive(*owner) else "dead"


def _remove_dead_history_lock(directory, lock, writer):
    """Moves a dead writer's lock aside under our own name, then checks what was moved: another writer's live
    lock (it judged the same dead lock a moment before us) is put back (link fails if a third holds it)."""
    aside = os.path.join(directory, ".tmp-%s-stale" % writer)
    try:
        os.rename(lock, aside)
    except OSError:
        return
    try:
        if _history_lock_owner(aside) != "dead":
            os.link(aside, lock)
    except OSError:
        pass
    unlink_quiet(aside)


def _release_history_lock(lock, writer):
    try:
        if (read_regular_file(lock) or "").strip() == writer:
            os.unlink(lock)
    except OSError:
        pass


def steady_margin(peak, lowest, highest):
    """The margin once five runs or more are known: 5 % plus the peaks' spread (highest - lowest) over p, at
    most 15 %."""
    return min(PREDICT_MARGIN, PREDICT_MARGIN_LEAST + (highest - lowest) / peak)


def predict_margin(known, peak, lowest, highest):
    """The margin for a prediction made from `known` recent runs (docs/PROTOCOL.md, "History")."""
    if 1 <= known <= len(PREDICT_MARGINS):
        return PREDICT_MARGINS[known - 1]
    return steady_margin(peak, lowest, highest)


def predict_peak(runs):
    """A run's predicted peak (docs/PROTOCOL.md, "History"); None when nothing is known.

    Of the last 10 peaks (n), p is the nearest-rank 90th percentile; the larger of p * (1 + margin(n)) and,
    with n >= 2, (p + (p - lowest) / (n - 1)) * (1 + steady_margin), rounded up. Same operations in the
    same order as @seq-test/core's predictPeak, so both languages round alike (IEEE doubles; ints below 2**53 are exact).
    """
    import math

    recent = sorted(r["peakBytes"] for r in runs[-PREDICT_FROM:])
    n = len(recent)
    if n == 0:
        return None
    rank = max(1, int(math.ceil(PREDICT_PERCENTILE * n)))
    peak = recent[rank - 1]
    lowest, highest = recent[0], recent[-1]
    few_known = peak * (1 + predict_margin(n, peak, lowest, highest))
    spread = 0 if n < 2 else (peak + (peak - lowest) / (n - 1)) * (1 + steady_margin(peak, lowest, highest))
    return int(math.ceil(max(few_known, spread)))


def ticket_admission(ticket):
    """The `admission` field of a version-2 ticket, validated; None for version 1 or garbage."""
    a = (ticket or {}).get("admission")
    if not isinstance(a, dict) or a.get("mode") != "auto" or not isinstance(a.get("fingerprint"), str):
        return None
    max_slots = a.get("maxSlots")
    if not isinstance(max_slots, int) or isinstance(max_slots, bool) or max_slots < 1:
        return None

    def whole(n):
        return isinstance(n, int) and not isinstance(n, bool)

    def size(n):
        return n if whole(n) and 0 < n <= MAX_PEAK else None

    ended_at = a.get("endedAt")
    return {
        "maxSlots": max_slots,
        "fingerprint": a["fingerprint"],
        "predictedBytes": size(a.get("predictedBytes")),
        "budgetBytes": size(a.get("budgetBytes")),
        "reserveBytes": size(a.get("reserveBytes")),
        # When its command ended (its leftovers may linger); anything but a believable time: still running.
        "endedAt": ended_at if whole(ended_at) and 0 <= ended_at <= MAX_SAFE_INTEGER else None,
    }


#: How often a holder samples its own tree for the history, as @seq-test/core's SAMPLE_SCHEDULE: (until so
#: many seconds after it started holding, every so many seconds). Often at first, so that a short run's
#: peak is seen at all, then less often: each sample costs a page-table walk per process (docs/memory.md).
SAMPLE_SCHEDULE = ((2.0, 0.1), (float("inf"), 0.5))
#: A sample reads the tree's Pss only when its RSS says it may be above the peak, or this long after the last
#: read anyway (as @seq-test/core's RECHECK_MS; see AutoAdmission._sample).
RECHECK_SECONDS = 2.0


#: How far a process's resident file pages may move before its Pss is read again (as @seq-test/core's
#: FILE_DRIFT): a page of a library shared by N processes raises RSS by a page and Pss by 1/N of one.
FILE_DRIFT = 1024 ** 2


def _follows_rss(last, file_now=None):
    """Whether a process's Pss surely moved as its RSS did since its last read `last` (excess, shared anonymous
    bytes, resident file bytes, measure): it shared no anonymous page then, and (with `file_now`, its resident
    file bytes now) its resident file pages moved by at most FILE_DRIFT since. As @seq-test/core's
    followsRss."""
    if last is None or last[1] != 0 or last[2] is None:
        return False
    return file_now is None or abs(file_now - last[2]) <= FILE_DRIFT


def peak_noise(peak):
    """How far above the peak an estimate must be for a read before the recheck: 2 % of it, at least 1 MiB (as
    @seq-test/core's peakNoise)."""
    return max(1024 ** 2, peak / 50.0)


def sample_period(elapsed):
    """Seconds until the next sample, `elapsed` seconds after the run started holding."""
    return next((every for until, every in SAMPLE_SCHEDULE if elapsed < until), SAMPLE_SCHEDULE[-1][1])


class AutoAdmission(object):
    """`"slots": "auto"` for one run: its ticket field, the admission decision, and its peak record."""

    def __init__(self, queue_dir, what, max_slots=None, budget=None, reserve=None, warn=None):
        self.queue_dir = queue_dir
        self.what = what
        self.max_slots = max_slots or max(1, os.cpu_count() or 1)
        self.budget = budget
        self.reserve = reserve
        self.fingerprint = fingerprint_of(what["argv"], what["cwd"], what.get("runner"), what.get("config"))
        self._warn = warn or (lambda m: None)
        self._reported = set()
        self.predicted = self._read_prediction()
        self._learn = (None, time.monotonic())  # (key of the queue ahead, when): see relearn()
        self._last = None  # (key, monotonic time, verdict): see MEASURE_EVERY_SECONDS
        self._available = available_memory  # read before and after the holders are measured (see _admit)
        self._peak = 0
        self._measure = "pss"
        self._sampled = {}  # (pid, start) -> (RSS − Pss, shared anonymous, resident file, measure) at its last read
        self._read_at = float("-inf")
        self.pss_reads = 0  # for tests: how many smaps_rollup reads sampling made (one per process)
        self._began = None
        self._sampler = None
        self._stop = None

    def _read_prediction(self):
        runs, problems = read_history(self.queue_dir, self.fingerprint)
        for problem in problems:
            # Each problem once: a waiter that re-reads a refused file must not repeat it every second.
            if problem not in self._reported:
                self._reported.add(problem)
                self._warn(problem)
        return predict_peak(runs)

    def relearn(self, ahead):
        """While waiting with no prediction: re-reads the history when a ticket ahead changed (a holder that
        recorded its peak has just left) or at most every RELEARN_EVERY_SECONDS, as @seq-test/core does. True
        when a prediction was just learned: the caller rewrites its ticket's admission field."""
        if self.predicted is not None:
            return False
        key = tuple((e.name, e.started_at) for e in ahead)
        now = time.monotonic()
        if key == self._learn[0] and now - self._learn[1] < RELEARN_EVERY_SECONDS:
            return False
        self._learn = (key, now)
        self.predicted = self._read_prediction()
        if self.predicted is None:
            return False
        self._last = None
        return True

    def ticket_field(self):
        return {
            "mode": "auto",
            "maxSlots": self.max_slots,
            "fingerprint": self.fingerprint,
            "predictedBytes": self.predicted,
            "budgetBytes": self.budget,
            "reserveBytes": self.reserve,
            "endedAt": None,
        }

    def admit(self, ahead, owner_pid=None):
        """(admit, text) for our ticket with `ahead` (live entries, in order) in front of it; `owner_pid`: our
        ticket's owner (default: this process), whose tree's memory now is taken off what we need."""
        # Same queue, measured a moment ago: re-used for up to MEASURE_EVERY_SECONDS (as @seq-test/core does).
        key = tuple((e.name, e.started_at, (ticket_admission(e.ticket) or {}).get("endedAt")) for e in ahead)
        now = time.monotonic()
        if self._last is not None and self._last[0] == key and now - self._last[1] < MEASURE_EVERY_SECONDS:
            return self._last[2]
        verdict = self._admit(ahead, os.getpid() if owner_pid is None else owner_pid)
        self._last = (key, now, verdict)
        return verdict

    def _admit(self, ahead, owner_pid):
        holders = []
        waiting = 0
        for entry in ahead:
            if entry.ticket is not None and entry.ticket.get("startedAt") is None:
                waiting += 1
                continue
            admission = ticket_admission(entry.ticket) or {}
            holders.append((entry.pid, admission.get("predictedBytes"), admission.get("endedAt") is not None))

        def decide(measure):
            available = self._available()
            figures = [(p, tree_memory(pid)[0] if measure else None, ended) for pid, p, ended in holders]
            own = tree_memory(owner_pid)[0] if measure else None
            if measure:
                # What a holder gains while the trees are measured would count in our favour twice (still free
                # in the figure read before, and as less growth to come): the lower of before and after.
                after = self._available()
                if available is None or after is None:
                    available = None
                elif after["bytes"] < available["bytes"]:
                    available = after
            reserve = self.reserve
            if reserve is None:
                reserve = default_reserve(self.budget if self.budget is not None else (available or {}).get("total", 0))
            return decide_admission(
                self.max_slots,
                waiting,
                figures,
                self.predicted,
                None if available is None else available["bytes"],
                reserve,
                self.budget,
                own,
            )

        # The rules before the memory rule need no live memory: no tree walk while FIFO alone says wait.
        admit, reason, text = decide(False)
        if reason in ("fits", "memory"):
            admit, _, text = decide(True)
        return admit, text

    def started(self):
        """We hold: sample our own tree's memory (a daemon thread) for the history."""
        import threading

        self._began = time.monotonic()
        self._stop = threading.Event()
        self._sample()

        def loop():
            while not self._stop.wait(sample_period(time.monotonic() - self._began)):
                self._sample()

        self._sampler = threading.Thread(target=loop, name="seq-test-memory", daemon=True)
        self._sampler.start()

    def _sample(self):
        # Pss ≤ RSS for every process, and RSS − Pss (a process's share of libraries and of pages shared with
        # others) hardly moves between two looks; a page a process makes its own raises its RSS and its Pss
        # alike. So the tree's Pss is estimated as the sum of RSS − that excess at each process's last read (a
        # process not read yet counting its whole RSS), and the smaps_rollup reads (a page-table walk each, ~5
        # ms per 300 MiB) are made only where the estimate may be wrong (_follows_rss: not read yet, sharing
        # anonymous pages, or file pages moved), and only when the estimate says the tree may be above its
        # peak, or, for those that may be wrong, RECHECK_SECONDS after the last reads (pages inherited over fork
        # turn private when written: Pss rises at the same RSS). As @seq-test/core's PeakRecorder.sample.
        table = process_table()
        tree = []  # (key, pid, RSS, resident file bytes), from one statm read each
        for pid in descendants_of(os.getpid()):
            statm = _statm_of(pid)  # None where there is no /proc (macOS: nothing to sample, as before)
            info = table.get(pid) if statm is not None else None
            if info is not None and not info.gone:
                tree.append(((pid, info.start), pid) + statm)
        estimate = 0
        unsure = False
        for key, _, rss, _ in tree:
            last = self._sampled.get(key)
            estimate += max(0, rss - (last[0] if last else 0))
            unsure = unsure or not _follows_rss(last)
        now = time.monotonic()
        recheck = unsure and now - self._read_at >= RECHECK_SECONDS
        # Where every figure follows RSS, the estimate is the tree's Pss: any rise counts, at no read's cost.
        if estimate <= self._peak + (peak_noise(self._peak) if unsure else 0) and not recheck:
            return
        last = dict((key, self._sampled[key]) for key, _, _, _ in tree if key in self._sampled)
        to_read, rest = [], []
        for item in tree:
            (rest if _follows_rss(last.get(item[0]), item[3]) else to_read).append(item)
        # A process seen for the first time that shares anonymous pages was forked: the process it shares them
        # with has a smaller Pss than its estimate now, so the others are read too.
        if self._read(to_read, last):
            self._read(rest, last)
        self._sampled = last
        total = 0
        kinds = set()
        for key, _, rss, _ in tree:
            one = last.get(key)
            if one is not None:  # else gone before it could be read
                total += max(0, rss - one[0])
                kinds.add(one[3])
        if total > self._peak:
            self._peak, self._measure = total, _measure_of(kinds)

    def _read(self, items, into):
        """Reads these (key, pid, RSS, resident file bytes) processes' Pss (their RSS where it is unreadable) into
        `into`. True when one of them, not read before, shares anonymous pages (or does not say): it may have
        been forked."""
        if not items:
            return False
        self._read_at = time.monotonic()
        forked = False
        for key, pid, rss, _ in items:
            smaps = smaps_of(pid)
            if smaps is not None:
                one = (max(0, rss - smaps[0]), smaps[1], smaps[2], "pss")
            elif _rss_of(pid) is not None:
                one = (0, None, None, "rss")
            else:
                continue  # gone
            self.pss_reads += 1
            if one[1] != 0 and key not in into:
                forked = True
            into[key] = one
        return forked

    def finished(self, completed):
        """Stops sampling; records the peak when the run ended on its own. Returns a problem or None."""
        if self._stop is None:
            return None
        self._stop.set()
        self._stop = None
        self._sample()
        if not completed or self._peak <= 0:
            return None
        return record_run(
            self.queue_dir,
            self.what,
            {
                "peakBytes": int(self._peak),
                "durationMs": int((time.monotonic() - self._began) * 1000),
                "endedAt": int(time.time() * 1000),
                "measure": self._measure,
            },
        )
