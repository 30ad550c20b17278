"""Unit tests of seq_subprocess.run (stdlib unittest: they run on Python 3.8 to 3.13 without pytest)."""

import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402  (puts templates/ on sys.path)

import seq_subprocess as S  # noqa: E402
import seq_test_lock as L  # noqa: E402


class RunCase(unittest.TestCase):
    def setUp(self):
        self.sandbox = support.Sandbox()
        # seq_subprocess reads os.environ (the calling process's run chain): give it the sandbox's.
        self.saved_env = dict(os.environ)
        env = self.sandbox.env()
        os.environ.clear()
        os.environ.update(env)

    def tearDown(self):
        os.environ.clear()
        os.environ.update(self.saved_env)
        left = self.sandbox.cleanup()
        self.assertEqual(left, [], "processes left behind")

    def pidfile(self, name):
        return os.path.join(self.sandbox.dir, name)

    def read_pid(self, name):
        path = self.pidfile(name)
        support.wait_for(lambda: os.path.exists(path) and open(path).read().strip(), 20, name)
        with open(path) as f:
            return int(f.read().strip())


class DropInTest(RunCase):
    def test_same_results_as_subprocess_run(self):
        r = S.run(["sh", "-c", "echo out; echo err >&2; exit 3"], capture_output=True, text=True)
        self.assertIsInstance(r, subprocess.CompletedProcess)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (3, "out\n", "err\n"))
        self.assertEqual(r.args, ["sh", "-c", "echo out; echo err >&2; exit 3"])
        self.assertEqual(S.run(["cat"], input=b"bytes in", stdout=S.PIPE).stdout, b"bytes in")
        self.assertEqual(S.run(["cat"], input="text", capture_output=True, encoding="utf-8").stdout, "text")
        self.assertEqual(S.run("echo $((6*7))", shell=True, stdout=S.PIPE, universal_newlines=True).stdout, "42\n")
        cwd = os.path.realpath(self.sandbox.dir)
        self.assertEqual(S.run(["pwd"], cwd=cwd, capture_output=True, text=True).stdout.strip(), cwd)
        r = S.run(["sh", "-c", "echo $A-$SEQ_TEST_TOKEN"], env={"A": "b", "PATH": os.environ["PATH"]}, capture_output=True, text=True)
        value, chain = r.stdout.strip().split("-", 1)
        self.assertEqual(value, "b")
        self.assertEqual(L.parse_token(chain.split(":")[-1])[0], os.getpid(), "the call's token names us")
        self.assertEqual(S.run(["true"], stdout=S.DEVNULL).stdout, None)
        self.assertEqual(S.run(["sh", "-c", "echo x >&2"], stderr=S.STDOUT, stdout=S.PIPE).stdout, b"x\n")

    def test_check_raises_called_process_error(self):
        with self.assertRaises(subprocess.CalledProcessError) as raised:
            S.run(["sh", "-c", "echo partial; exit 5"], check=True, capture_output=True, text=True)
        self.assertEqual(raised.exception.returncode, 5)
        self.assertEqual(raised.exception.output, "partial\n")
        self.assertEqual(S.run(["true"], check=True).returncode, 0)

    def test_bad_arguments_fail_like_subprocess_run(self):
        with self.assertRaisesRegex(ValueError, "stdin and input"):
            S.run(["cat"], input=b"x", stdin=subprocess.PIPE)
        with self.assertRaisesRegex(ValueError, "capture_output"):
            S.run(["true"], capture_output=True, stdout=subprocess.PIPE)
        with self.assertRaises(FileNotFoundError):
            S.run(["/nonexistent/command"])

    def test_runs_in_its_own_session(self):
        r = S.run([sys.executable, "-c", "import os; print(os.getsid(0) == os.getpid())"], capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), "True")


class TreeTest(RunCase):
    def test_one_empty_sample_does_not_end_the_wait(self):
        # `sh -c "job &"`: sh is reaped before the first sample, so the job is found by its token only, and
        # a read inside execve shows no environment. Every process's first read misses here.
        from unittest import mock

        real_table = S._lock.process_table
        missed = set()

        class FirstReadMisses(object):
            def __init__(self):
                self.real = real_table()

            def __getattr__(self, name):
                return getattr(self.real, name)

            def env_value(self, pid, name):
                if pid not in missed:
                    missed.add(pid)
                    return None
                return self.real.env_value(pid, name)

        with mock.patch.object(S._lock, "process_table", FirstReadMisses):
            r = S.run(["sh", "-c", "sleep 300 &"], linger=0.3)
        self.assertEqual([(c, s) for _, c, s in r.leftovers], [("sleep 300", "SIGTERM")])

    def test_a_token_carrier_read_once_without_its_token_is_still_found(self):
        # Between fork and exec a process shows its parent's environment, inside execve an empty one: the
        # first read of a carrier of the call's token can miss it; it must not make it a stranger for good.
        token = L.create_token()
        env = dict(os.environ)
        env[L.TOKEN_ENV] = token
        carrier = subprocess.Popen(["sleep", "30"], env=env, start_new_session=True)
        try:
            tree = S._Tree(None, token)
            real = tree.table
            first_read = {"missed": False}

            class MidExecTable(object):
                def __getattr__(self, name):
                    return getattr(real, name)

                def env_value(self, pid, name):
                    if pid == carrier.pid and not first_read["missed"]:
                        first_read["missed"] = True
                        return None
                    return real.env_value(pid, name)

            tree.table = MidExecTable()
            support.wait_for(lambda: real.env_value(carrier.pid, L.TOKEN_ENV) == token, 20, "the carrier to exec")
            self.assertNotIn(carrier.pid, [p.pid for p in tree.sample()])
            self.assertTrue(first_read["missed"])
            self.assertIn(carrier.pid, [p.pid for p in tree.sample()])
        finally:
            carrier.kill()
            carrier.wait()

    def test_waits_for_background_children(self):
        began = time.monotonic()
        r = S.run(["sh", "-c", "(sleep 0.6; echo late) & echo early"], capture_output=True, text=True)
        self.assertGreaterEqual(time.monotonic() - began, 0.6)
        self.assertEqual(r.stdout, "early\nlate\n")

    def test_waits_even_when_the_main_process_is_gone_before_we_look(self):
        # `sh -c "job &"` may exit before run() first reads the process table; its child must still count.
        for i in range(30):
            marker = self.pidfile("marker-%d" % i)
            S.run("(sleep 0.05; touch %s) &" % marker, shell=True)
            self.assertTrue(os.path.exists(marker), "iteration %d returned before the background job ended" % i)

    def test_waits_for_a_setsid_escapee_without_pipes(self):
        marker = self.pidfile("escapee-done")
        began = time.monotonic()
        S.run(["sh", "-c", "setsid sh -c 'sleep 0.6; touch %s' </dev/null >/dev/null 2>&1 &" % marker])
        self.assertGreaterEqual(time.monotonic() - began, 0.6)
        self.assertTrue(os.path.exists(marker), "run() returned before the escapee ended")

    def test_timeout_ends_the_whole_tree(self):
        script = "setsid sh -c 'echo $$ > %s; exec sleep 300' & echo $! > %s; sleep 300" % (
            self.pidfile("escapee"),
            self.pidfile("child"),
        )
        began = time.monotonic()
        with self.assertRaises(subprocess.TimeoutExpired) as raised:
            S.run(["sh", "-c", script], timeout=1.5, capture_output=True)
        self.assertEqual(raised.exception.timeout, 1.5)
        self.assertLess(time.monotonic() - began, 30)
        for name in ("escapee", "child"):
            pid = self.read_pid(name)
            support.wait_for(lambda: not support.pid_alive(pid), 10, "%s %d to end" % (name, pid))

    def test_linger_bounds_the_wait_and_reports_leftovers(self):
        r = S.run(["sh", "-c", "sleep 300 &"], linger=0.3)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(len(r.leftovers), 1)
        pid, command, sig = r.leftovers[0]
        self.assertEqual((command, sig), ("sleep 300", "SIGTERM"))
        self.assertFalse(support.pid_alive(pid))

    def test_keyboard_interrupt_ends_the_tree(self):
        """A Ctrl-C in the caller (here: SIGINT to a Python that is inside run()) ends the command's tree."""
        pidfile = self.pidfile("grandchild")
        code = (
            "import signal, sys; sys.path.insert(0, %r)\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "import seq_subprocess\n"
            "try:\n"
            "    seq_subprocess.run(['sh', '-c', 'sleep 300 & echo $! > %s; wait'])\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted', flush=True)\n" % (support.TEMPLATES, pidfile)
        )
        caller = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, universal_newlines=True)
        grandchild = self.read_pid("grandchild")
        caller.send_signal(signal.SIGINT)
        out, _ = caller.communicate(timeout=30)
        self.assertEqual(out.strip(), "interrupted")
        support.wait_for(lambda: not support.pid_alive(grandchild), 10, "the grandchild to end")


    def test_an_interrupt_inside_popen_still_ends_what_started(self):
        """Ctrl-C may land inside Popen() after the child started, before run() knows its pid."""
        from unittest import mock

        real_popen = subprocess.Popen
        pidfile = "grandchild-early"

        def interrupted_popen(*args, **kwargs):
            real_popen(*args, **kwargs)
            self.read_pid(pidfile)  # the child runs and has started its own child
            raise KeyboardInterrupt

        with mock.patch.object(S.subprocess, "Popen", interrupted_popen):
            with self.assertRaises(KeyboardInterrupt):
                S.run(["sh", "-c", "sleep 300 & echo $! > %s; wait" % self.pidfile(pidfile)])
        grandchild = self.read_pid(pidfile)
        support.wait_for(lambda: not support.pid_alive(grandchild), 10, "the grandchild to end")


class SerializationTest(RunCase):
    def test_threads_run_one_at_a_time(self):
        log = self.pidfile("log")
        script = "echo start $(date +%%s%%N) >> %s; sleep 0.2; echo end $(date +%%s%%N) >> %s" % (log, log)
        threads = [threading.Thread(target=S.run, args=(["sh", "-c", script],)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        with open(log) as f:
            kinds = [line.split()[0] for line in f]
        self.assertEqual(kinds, ["start", "end"] * 4)

    def test_processes_of_one_run_take_turns_through_its_nested_queue(self):
        log = self.pidfile("log")
        lock = L.acquire("outer run", key="serial", env=os.environ)
        try:
            os.environ[L.TOKEN_ENV] = lock.chain
            os.environ["SEQ_TEST_KEY"] = "serial"
            script = "echo start >> %s; sleep 0.3; echo end >> %s" % (log, log)
            code = "import sys; sys.path.insert(0, %r); import seq_subprocess; seq_subprocess.run(['sh', '-c', %r])" % (
                support.TEMPLATES,
                script,
            )
            callers = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
            for c in callers:
                self.assertEqual(c.wait(60), 0)
        finally:
            lock.release()
        with open(log) as f:
            kinds = [line.strip() for line in f]
        self.assertEqual(kinds, ["start", "end"] * 3)


class PatchTest(RunCase):
    def test_patch_and_unpatch(self):
        original = subprocess.run
        S.patch()
        try:
            self.assertIs(subprocess.run, S.run)
            self.assertTrue(S.is_patched())
            S.patch()  # twice is harmless
            began = time.monotonic()
            out = subprocess.check_output(["sh", "-c", "sleep 0.5 >/dev/null 2>&1 & echo x"])
            self.assertEqual(out, b"x\n")
            self.assertGreaterEqual(time.monotonic() - began, 0.5, "check_output goes through the patched run")
        finally:
            S.unpatch()
        self.assertIs(subprocess.run, original)
        self.assertFalse(S.is_patched())


if __name__ == "__main__":
    unittest.main()
