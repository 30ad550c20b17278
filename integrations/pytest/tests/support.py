"""Helpers shared by the bridge's tests (stdlib only: the unittest files import it too)."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(os.path.dirname(HERE), "templates")
if TEMPLATES not in sys.path:
    sys.path.insert(0, TEMPLATES)

#: Every process a test starts carries this marker, so cleanup finds exactly those (by pid), nothing else.
MARKER_ENV = "SEQ_TEST_PY_TEST_MARKER"

CLEARED = (
    "SEQ_TEST_TOKEN",
    "SEQ_TEST_TICKET",
    "SEQ_TEST_KEY",
    "SEQ_TEST_DISABLE",
    "SEQ_TEST_PATCH_SUBPROCESS",
    "SEQ_TEST_WAIT_TIMEOUT",
    "SEQ_TEST_SUBPROCESS_LINGER",
    "PYTEST_ADDOPTS",
    "PYTEST_XDIST_WORKER",
    "PYTEST_CURRENT_TEST",
)


class Sandbox(object):
    """A temp dir with a private state dir, and a marker that names every process started from it."""

    def __init__(self):
        self.marker = uuid.uuid4().hex
        self.dir = os.path.realpath(tempfile.mkdtemp(prefix="seq-test-py-"))
        self.state_dir = os.path.join(self.dir, "state")

    def env(self, **extra):
        env = dict(os.environ)
        for name in CLEARED:
            env.pop(name, None)
        env[MARKER_ENV] = self.marker
        env["SEQ_TEST_STATE_DIR"] = self.state_dir
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        # Plugins installed in the interpreter (hypothesis, benchmark, ...) cost seconds per run and are not
        # what these tests are about; the xdist tests load pytest-xdist explicitly with -p.
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        for name, value in extra.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def project(self, name="project", ini="[pytest]\n", conftest=None):
        """A pytest project with the bridge installed the way `seq-test init --pytest` does."""
        root = os.path.join(self.dir, name)
        os.makedirs(root)
        for module in ("seq_test_lock.py", "seq_subprocess.py", "seq_test_plugin.py"):
            shutil.copy(os.path.join(TEMPLATES, module), root)
        write(os.path.join(root, "conftest.py"), conftest if conftest is not None else 'pytest_plugins = ["seq_test_plugin"]\n')
        if ini is not None:
            write(os.path.join(root, "pytest.ini"), ini)
        return root

    def ours(self):
        """Live pids (zombies excluded) carrying this sandbox's marker."""
        found = []
        needle = ("%s=%s" % (MARKER_ENV, self.marker)).encode()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open("/proc/%s/stat" % name, "rb") as f:
                    stat = f.read().decode("latin-1")
                if stat[stat.rfind(")") + 2 :].startswith("Z"):
                    continue
                with open("/proc/%s/environ" % name, "rb") as f:
                    if needle in f.read():
                        found.append(int(name))
            except OSError:
                pass
        return found

    def cleanup(self):
        left = self.ours()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
        return left


def write(path, text):
    d = os.path.dirname(path)
    if d and not os.path.isdir(d):
        os.makedirs(d)
    with open(path, "w") as f:
        f.write(text)


def pytest_cmd(*args):
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"] + list(args)


def run_pytest(sandbox, root, args=(), env=None, cwd=None, timeout=120):
    return subprocess.run(
        pytest_cmd(*args),
        cwd=cwd or root,
        env=env or sandbox.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=timeout,
    )


def start_pytest(sandbox, root, args=(), env=None, cwd=None):
    return subprocess.Popen(
        pytest_cmd(*args),
        cwd=cwd or root,
        env=env or sandbox.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
    )


def wait_for(probe, timeout=30.0, what="condition", interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("latin-1")
    except OSError:
        return False
    return not stat[stat.rfind(")") + 2 :].startswith(("Z", "X"))


def ticket_names(directory):
    """The ticket files in one tickets/ directory, sorted; a writer's `.tmp-` file (write_atomic, before its
    rename) is not a ticket yet: unlinking it only makes the writer write again."""
    return sorted(name for name in os.listdir(directory) if not name.startswith(".tmp-"))


def tickets(state_dir):
    """Every ticket file under the state dir (all queues, nested ones included), as relative paths."""
    found = []
    for base, _dirs, files in os.walk(state_dir):
        if os.path.basename(base) == "tickets":
            found.extend(os.path.relpath(os.path.join(base, f), state_dir) for f in files if not f.startswith(".tmp-"))
    return sorted(found)
