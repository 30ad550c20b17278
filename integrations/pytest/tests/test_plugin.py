"""The generated plugin, end to end: real pytest processes on temporary projects.

Runs under whichever pytest runs it (the vitest harness runs it under pytest 9 on pyenv's Python 3.11 and
pytest 7 on Debian's Python). The xdist tests need pytest-xdist; with SEQ_TEST_REQUIRE_XDIST=1 (set by the
harness) its absence is a failure, not a skip.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402

import seq_test_lock as L  # noqa: E402

PID_TEST = """
import os

def _record(name):
    with open(os.path.join(os.environ["PID_DIR"], name), "w") as f:
        f.write("%d %s" % (os.getpid(), os.environ.get("PYTEST_XDIST_WORKER", "-")))

def test_a(): _record("a")
def test_b(): _record("b")
def test_c(): _record("c")
def test_d(): _record("d")
"""


@pytest.fixture
def sandbox():
    box = support.Sandbox()
    yield box
    left = box.cleanup()
    assert left == [], "processes left behind: %s" % left


def require_xdist():
    try:
        import xdist  # noqa: F401
    except ImportError:
        if os.environ.get("SEQ_TEST_REQUIRE_XDIST") == "1":
            pytest.fail("pytest-xdist is required here (SEQ_TEST_REQUIRE_XDIST=1) but cannot be imported")
        pytest.skip("pytest-xdist is not installed")


def xdist_project(sandbox, ini="[pytest]\n"):
    root = sandbox.project(ini=ini)
    support.write(os.path.join(root, "tests", "sub", "test_pids.py"), PID_TEST)
    pid_dir = os.path.join(sandbox.dir, "pids")
    os.mkdir(pid_dir)
    return root, pid_dir


def recorded(pid_dir):
    out = {}
    for name in sorted(os.listdir(pid_dir)):
        with open(os.path.join(pid_dir, name)) as f:
            pid, worker = f.read().split()
        out[name] = (int(pid), worker)
    return out


def session_pid(stdout):
    m = re.search(r"^SESSION_PID (\d+)$", stdout, re.M)
    return int(m.group(1)) if m else None


XDIST = ["-p", "xdist.plugin", "-p", "xdist.looponfail"]


class TestSequential:
    @pytest.mark.parametrize(
        "args, addopts, ini_addopts, from_subdir",
        [
            (["-n", "4"], None, None, False),
            (["-n", "auto"], None, None, False),
            (["--numprocesses=3"], None, None, True),
            (["--dist", "load", "--tx", "2*popen"], None, None, False),
            ([], "-n 4", None, False),
            ([], None, "-n 2", True),
        ],
        ids=["-n 4", "-n auto", "--numprocesses from a subdir", "--dist --tx", "PYTEST_ADDOPTS", "ini addopts from a subdir"],
    )
    def test_xdist_parallelism_is_turned_off(self, sandbox, args, addopts, ini_addopts, from_subdir):
        require_xdist()
        ini = "[pytest]\n" + ("addopts = %s\n" % ini_addopts if ini_addopts else "")
        root, pid_dir = xdist_project(sandbox, ini)
        env = sandbox.env(PID_DIR=pid_dir, PYTEST_ADDOPTS=addopts)
        cwd = os.path.join(root, "tests", "sub") if from_subdir else root
        proc = support.start_pytest(sandbox, root, XDIST + args, env=env, cwd=cwd)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, out + err
        runs = recorded(pid_dir)
        assert sorted(runs) == ["a", "b", "c", "d"]
        assert {pid for pid, _ in runs.values()} == {proc.pid}, "every test ran in the pytest process itself"
        assert {worker for _, worker in runs.values()} == {"-"}
        assert re.search(r"^seq-test: sequential: pytest-xdist parallelism turned off \(.+ ignored\)$", out, re.M), out
        assert "gw0" not in out

    def test_control_without_the_plugin_xdist_does_run_workers(self, sandbox):
        """Proves the test above is meaningful: the same project without the plugin runs in workers."""
        require_xdist()
        root, pid_dir = xdist_project(sandbox)
        env = sandbox.env(PID_DIR=pid_dir)
        proc = support.start_pytest(sandbox, root, XDIST + ["-p", "no:seq_test_plugin", "-n", "2"], env=env)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, out + err
        runs = recorded(pid_dir)
        assert proc.pid not in {pid for pid, _ in runs.values()}
        assert {worker for _, worker in runs.values()} <= {"gw0", "gw1"}

    def test_allow_xdist_leaves_workers_alone_and_the_controller_holds_the_lock(self, sandbox):
        require_xdist()
        root, pid_dir = xdist_project(sandbox, "[pytest]\nseq_test_allow_xdist = true\n")
        env = sandbox.env(PID_DIR=pid_dir, SEQ_TEST_VERBOSE="1")
        proc = support.start_pytest(sandbox, root, XDIST + ["-n", "2"], env=env)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, out + err
        assert {worker for _, worker in recorded(pid_dir).values()} <= {"gw0", "gw1"}
        assert "seq-test: pytest-xdist left alone (seq_test_allow_xdist = true): -n 2" in out
        assert re.search(r"^seq-test: lock on .* held", out, re.M), out
        assert support.tickets(sandbox.state_dir) == []

    def test_header_is_silent_when_nothing_changed(self, sandbox):
        root = sandbox.project()
        support.write(os.path.join(root, "test_one.py"), "def test_one(): pass\n")
        r = support.run_pytest(sandbox, root)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "seq-test:" not in r.stdout + r.stderr, r.stdout + r.stderr

    def test_header_lines_with_seq_test_verbose(self, sandbox):
        root = sandbox.project()
        support.write(os.path.join(root, "test_one.py"), "def test_one(): pass\n")
        r = support.run_pytest(sandbox, root, env=sandbox.env(SEQ_TEST_VERBOSE="1"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(r"^seq-test: sequential \(", r.stdout, re.M), r.stdout
        assert re.search(r"^seq-test: lock on %s held \(waited \d+ ms\)$" % re.escape(root), r.stdout, re.M), r.stdout


SESSION_TEST = """
import json, os

def test_session_holds_the_lock():
    print("SESSION_PID %d" % os.getpid())
    chain = os.environ["SEQ_TEST_TOKEN"].split(":")
    mine = chain[-1]
    assert mine.startswith("%d." % os.getpid())
    ticket = os.environ["SEQ_TEST_TICKET"]
    assert ticket.endswith(mine)
    found = []
    for base, dirs, files in os.walk(os.environ["SEQ_TEST_STATE_DIR"]):
        found += [os.path.join(base, f) for f in files if f == ticket + ".json"]
    assert len(found) == 1, found
    with open(found[0]) as f:
        content = json.load(f)
    assert content["impl"] == "python" and content["pid"] == os.getpid()
    assert content["startedAt"] is not None
    assert content["command"].startswith("pytest")
    with open(os.environ["OUT_FILE"], "w") as f:
        json.dump({"chain": chain, "ticket": found[0]}, f)
"""


class TestLock:
    def test_the_session_holds_a_ticket_and_exports_its_token(self, sandbox):
        root = sandbox.project()
        support.write(os.path.join(root, "test_session.py"), SESSION_TEST)
        out_file = os.path.join(sandbox.dir, "out.json")
        r = support.run_pytest(sandbox, root, ["-s"], env=sandbox.env(OUT_FILE=out_file))
        assert r.returncode == 0, r.stdout + r.stderr
        with open(out_file) as f:
            seen = json.load(f)
        assert len(seen["chain"]) == 1
        assert not os.path.exists(seen["ticket"]), "released at the end"
        assert support.tickets(sandbox.state_dir) == []

    def test_released_after_failures_and_errors(self, sandbox):
        root = sandbox.project()
        support.write(
            os.path.join(root, "test_fail.py"),
            "import pytest\n@pytest.fixture\ndef broken():\n    raise RuntimeError('x')\n"
            "def test_fail(): assert False\ndef test_error(broken): pass\n",
        )
        r = support.run_pytest(sandbox, root)
        assert r.returncode == 1, r.stdout + r.stderr
        assert support.tickets(sandbox.state_dir) == []

    def test_queues_behind_a_holder_with_the_clis_wait_line(self, sandbox):
        root = sandbox.project()
        log = os.path.join(sandbox.dir, "log")
        support.write(
            os.path.join(root, "test_stamp.py"),
            "import os\ndef test_stamp():\n    open(os.environ['LOG'], 'a').write('pytest ran\\n')\n",
        )
        env = sandbox.env(LOG=log)
        holder = L.acquire("the holder's command", cwd=root, env=env)
        try:
            proc = support.start_pytest(sandbox, root, env=env)
            support.wait_for(lambda: len(support.tickets(sandbox.state_dir)) == 2, 60, "pytest's ticket")
            time.sleep(0.5)
            assert proc.poll() is None, "pytest must wait while the lock is held"
            assert not os.path.exists(log)
            with open(log, "a") as f:
                f.write("holder released\n")
        finally:
            holder.release()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
        with open(log) as f:
            assert f.read() == "holder released\npytest ran\n"
        pattern = (
            r"^seq-test: waiting for the lock on %s: position 2 of 2, held by pid %d \(the holder's command\) for "
            r"\d.*; waited \d+ ms$" % (re.escape(root), os.getpid())
        )
        assert re.search(pattern, err, re.M), err
        assert re.search(r"^seq-test: our turn after ", err, re.M), err
        assert "seq-test: lock on" not in out, out  # the wait had its own lines

    @pytest.mark.parametrize("args", [["--help"], ["--version"], ["--collect-only", "-q"], ["--markers"], ["--fixtures"]])
    def test_info_commands_do_not_take_the_lock(self, sandbox, args):
        root = sandbox.project()
        support.write(os.path.join(root, "test_one.py"), "def test_one(): pass\n")
        env = sandbox.env()
        holder = L.acquire("holder", cwd=root, env=env)
        try:
            r = support.run_pytest(sandbox, root, args, env=env, timeout=120)
        finally:
            holder.release()
        assert r.returncode == 0, r.stdout + r.stderr
        assert "waiting for the lock" not in r.stderr

    def test_wait_timeout_exits_122(self, sandbox):
        root = sandbox.project(ini="[pytest]\nseq_test_wait_timeout = 0.5\n")
        support.write(os.path.join(root, "test_one.py"), "def test_one(): pass\n")
        env = sandbox.env()
        holder = L.acquire("holder", cwd=root, env=env)
        try:
            r = support.run_pytest(sandbox, root, env=env)
        finally:
            holder.release()
        assert r.returncode == 122, r.stdout + r.stderr
        assert "gave up after waiting" in r.stdout + r.stderr
        assert support.tickets(sandbox.state_dir) == []

    def test_an_unsafe_state_dir_is_refused_with_exit_125(self, sandbox):
        root = sandbox.project()
        support.write(os.path.join(root, "test_one.py"), "def test_one(): pass\n")
        os.makedirs(sandbox.state_dir)
        os.chmod(sandbox.state_dir, 0o777)
        r = support.run_pytest(sandbox, root)
        assert r.returncode == 125, r.stdout + r.stderr
        assert "seq-test: error: refusing state dir %s" % sandbox.state_dir in r.stdout + r.stderr
        # Not the default state dir: the fix offered is a private one, never a chmod of someone's directory.
        assert "set SEQ_TEST_STATE_DIR to a private directory" in r.stdout + r.stderr

    def test_bad_settings_are_usage_errors(self, sandbox):
        root = sandbox.project(ini="[pytest]\nseq_test_reap_grace = soon\n")
        support.write(os.path.join(root, "test_one.py"), "def test_one(): pass\n")
        r = support.run_pytest(sandbox, root)
        assert r.returncode == 4, r.stdout + r.stderr
        assert "seq_test_reap_grace expects a number of seconds, got 'soon'" in r.stdout + r.stderr
        assert support.tickets(sandbox.state_dir) == []

    def test_project_settings_file_sets_the_key(self, sandbox):
        root = sandbox.project()
        support.write(os.path.join(root, ".seqtestrc.json"), '{"key": "shared-lane"}\n')
        support.write(os.path.join(root, "test_one.py"), "def test_one(): pass\n")
        env = sandbox.env(SEQ_TEST_VERBOSE="1")
        holder = L.acquire("holder", key="shared-lane", env=env)
        try:
            proc = support.start_pytest(sandbox, root, env=env)
            support.wait_for(lambda: len(support.tickets(sandbox.state_dir)) == 2, 60, "pytest's ticket on shared-lane")
        finally:
            holder.release()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
        assert "seq-test: lock on shared-lane held" in out

    def test_disabled_by_env(self, sandbox):
        root = sandbox.project()
        support.write(os.path.join(root, "test_one.py"), "def test_one(): pass\n")
        env = sandbox.env(SEQ_TEST_DISABLE="1")
        holder = L.acquire("holder", cwd=root, env=env)
        try:
            r = support.run_pytest(sandbox, root, env=env)
        finally:
            holder.release()
        assert r.returncode == 0, r.stdout + r.stderr
        assert "seq-test: no lock (SEQ_TEST_DISABLE=1)" in r.stdout

    def test_nested_inside_a_holder_runs_at_once(self, sandbox):
        root = sandbox.project()
        support.write(os.path.join(root, "test_session.py"), SESSION_TEST)
        out_file = os.path.join(sandbox.dir, "out.json")
        env = sandbox.env(OUT_FILE=out_file, SEQ_TEST_VERBOSE="1")
        holder = L.acquire("outer run", cwd=root, env=env)
        try:
            env[L.TOKEN_ENV] = holder.chain
            r = support.run_pytest(sandbox, root, ["-s"], env=env)
        finally:
            holder.release()
        assert r.returncode == 0, r.stdout + r.stderr
        assert "nested inside the seq-test run that started pytest" in r.stdout
        with open(out_file) as f:
            seen = json.load(f)
        assert seen["chain"][0] == holder.token
        assert os.path.join("nested", holder.token, "tickets") in seen["ticket"]

    def test_key_is_the_same_from_a_subdirectory(self, sandbox):
        root = sandbox.project()
        support.write(os.path.join(root, "tests", "deep", "test_one.py"), "def test_one(): pass\n")
        env = sandbox.env()
        holder = L.acquire("holder", cwd=root, env=env)
        try:
            proc = support.start_pytest(sandbox, root, env=env, cwd=os.path.join(root, "tests", "deep"))
            support.wait_for(lambda: len(support.tickets(sandbox.state_dir)) == 2, 60, "pytest's ticket in the same queue")
        finally:
            holder.release()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err


class TestPlatform:
    def test_unsupported_platform_runs_without_the_lock(self, sandbox):
        # Stands in for Windows: the bridge's platform check says no before the plugin runs.
        root = sandbox.project(
            conftest="import seq_test_lock\nseq_test_lock.platform_supported = lambda platform=None: False\n"
            'pytest_plugins = ["seq_test_plugin"]\n'
        )
        support.write(
            os.path.join(root, "test_one.py"),
            "import os, subprocess\n"
            "def test_one():\n"
            "    assert 'SEQ_TEST_TOKEN' not in os.environ\n"
            "    assert subprocess.run(['true']).returncode == 0\n",
        )
        env = sandbox.env(SEQ_TEST_PATCH_SUBPROCESS="1")
        holder = L.acquire("holder", cwd=root, env=env)
        try:
            r = support.run_pytest(sandbox, root, env=env)
        finally:
            holder.release()
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(r"^seq-test: \S+ is not supported: seq-test runs on Linux .*Running without the lock\.$", r.stdout, re.M)


class TestLeftovers:
    def test_leftovers_are_reaped_and_listed(self, sandbox):
        root = sandbox.project()
        pids = os.path.join(sandbox.dir, "pids")
        support.write(
            os.path.join(root, "test_leave.py"),
            "import os, subprocess, time\n"
            "def became_sleep(p):\n"  # setsid execs sleep after Popen returns; under load, not yet
            "    while open('/proc/' + str(p.pid) + '/comm').read().strip() != 'sleep':\n"
            "        time.sleep(0.01)\n"
            "def test_leave():\n"
            "    subprocess.Popen(['sleep', '300'])\n"
            "    became_sleep(subprocess.Popen(['setsid', 'sleep', '301']))\n"
            # The shell returns only once its background child has become `sleep` (under load, a child
            # reaped before its exec is still named `sh -c ...`).
            "    subprocess.run(['sh', '-c', 'sleep 302 & until grep -qx sleep /proc/$!/comm; do sleep 0.01; done; echo $! >> %s'])\n"
            "    subprocess.Popen(['sleep', '303'], env={'PATH': os.environ['PATH']})  # no token: a child of pytest\n" % pids,
        )
        began = time.monotonic()
        r = support.run_pytest(sandbox, root)
        assert r.returncode == 0, r.stdout + r.stderr
        assert time.monotonic() - began < 100
        assert re.search(r"^=+ seq-test: ended 4 leftover processes of this session =+$", r.stdout, re.M), r.stdout
        for n in (300, 301, 302, 303):
            assert re.search(r"^pid \d+ \(SIGTERM\): sleep %d$" % n, r.stdout, re.M), r.stdout
        listed = [int(p) for p in re.findall(r"^pid (\d+) ", r.stdout, re.M)]
        for pid in listed:
            assert not support.pid_alive(pid)

    def test_reaped_and_released_even_when_another_sessionfinish_raises(self, sandbox):
        # pytest then skips pytest_unconfigure: the plugin's wrapper must still do its work.
        root = sandbox.project(
            conftest='pytest_plugins = ["seq_test_plugin"]\n\n'
            "def pytest_sessionfinish(session):\n    raise RuntimeError('another plugin fails')\n"
        )
        support.write(
            os.path.join(root, "test_leave.py"),
            "import subprocess\ndef test_leave():\n    subprocess.Popen(['sleep', '307'])\n",
        )
        r = support.run_pytest(sandbox, root)
        assert r.returncode != 0
        assert "another plugin fails" in r.stdout + r.stderr
        assert support.tickets(sandbox.state_dir) == []
        assert sandbox.ours() == []

    def test_a_decoy_without_the_token_survives(self, sandbox):
        root = sandbox.project()
        decoy = subprocess.Popen(["sleep", "304"], env=sandbox.env())
        try:
            support.write(os.path.join(root, "test_one.py"), "def test_one(): pass\n")
            r = support.run_pytest(sandbox, root)
            assert r.returncode == 0, r.stdout + r.stderr
            assert "leftover" not in r.stdout
            assert decoy.poll() is None
        finally:
            decoy.kill()
            decoy.wait()


SLOW_TEST = """
import os, subprocess, time

def test_slow():
    print("SESSION_PID %d" % os.getpid(), flush=True)
    subprocess.Popen(["sleep", "305"])
    open(os.environ["STARTED"], "w").close()
    time.sleep(300)
"""


class TestSignals:
    def start_slow(self, sandbox, env_extra=None):
        root = sandbox.project()
        support.write(os.path.join(root, "test_slow.py"), SLOW_TEST)
        started = os.path.join(sandbox.dir, "started")
        env = sandbox.env(STARTED=started, **(env_extra or {}))
        proc = support.start_pytest(sandbox, root, ["-s"], env=env)
        support.wait_for(lambda: os.path.exists(started), 120, "the slow test to start")
        assert len(support.tickets(sandbox.state_dir)) == 1
        return proc

    @pytest.mark.parametrize("sig, code", [(signal.SIGINT, 2), (signal.SIGTERM, -signal.SIGTERM), (signal.SIGHUP, -signal.SIGHUP)])
    def test_signal_releases_the_lock_and_leaves_no_process(self, sandbox, sig, code):
        proc = self.start_slow(sandbox)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == code, out + err
        assert support.tickets(sandbox.state_dir) == []
        assert re.search(r"^pid \d+ \(SIGTERM\): sleep 305$", out, re.M), out
        assert sandbox.ours() == []

    def test_sigterm_while_waiting_withdraws_the_ticket(self, sandbox):
        root = sandbox.project()
        support.write(os.path.join(root, "test_one.py"), "def test_one(): pass\n")
        env = sandbox.env()
        holder = L.acquire("holder", cwd=root, env=env)
        try:
            proc = support.start_pytest(sandbox, root, env=env)
            support.wait_for(lambda: len(support.tickets(sandbox.state_dir)) == 2, 60, "pytest's ticket")
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == -signal.SIGTERM, out + err
            assert len(support.tickets(sandbox.state_dir)) == 1
        finally:
            holder.release()

    def test_a_sigkilled_session_is_recovered_by_the_next_waiter(self, sandbox):
        proc = self.start_slow(sandbox)
        leftover_cmd = "sleep 305"
        root = os.path.join(sandbox.dir, "project")
        proc.kill()
        proc.wait()
        warnings = []
        began = time.monotonic()
        lock = L.acquire("next", cwd=root, env=sandbox.env(), on_warning=warnings.append)
        took = time.monotonic() - began
        lock.release()
        assert took < 15, took
        assert any(leftover_cmd in w for w in warnings), warnings
        assert sandbox.ours() == []


class TestPatchSubprocess:
    PATCH_TEST = """
import subprocess, time
import seq_subprocess

def test_patched():
    assert (subprocess.run is seq_subprocess.run) == EXPECTED
    began = time.monotonic()
    subprocess.run("sleep 0.5 >/dev/null 2>&1 &", shell=True)
    waited = time.monotonic() - began
    assert (waited >= 0.5) == EXPECTED, waited
"""

    @pytest.mark.parametrize(
        "ini, env, expected",
        [
            ("", None, False),
            ("seq_test_patch_subprocess = true\n", None, True),
            ("", "1", True),
        ],
        ids=["default", "ini", "env"],
    )
    def test_opt_in(self, sandbox, ini, env, expected):
        root = sandbox.project(ini="[pytest]\n" + ini)
        support.write(os.path.join(root, "test_patch.py"), "EXPECTED = %r\n" % expected + self.PATCH_TEST)
        r = support.run_pytest(sandbox, root, env=sandbox.env(SEQ_TEST_PATCH_SUBPROCESS=env))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "leftover" not in r.stdout or not expected
