"""Unit tests of seq_test_lock (stdlib unittest: they run on Python 3.8 to 3.13 without pytest)."""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support  # noqa: E402  (puts templates/ on sys.path)

import seq_test_lock as L  # noqa: E402


def spawn_sleeper(sandbox, seconds=300, env=None):
    """A live process of ours, for tickets whose owner must be alive."""
    return subprocess.Popen(["sleep", str(seconds)], env=env or sandbox.env())


def dead_identity(sandbox):
    """(pid, start) of a process that has exited and been waited for."""
    p = subprocess.Popen(["true"], env=sandbox.env())
    ident = None
    while ident is None:
        ident = L.identity_of(p.pid)
        if p.poll() is not None:
            break
    p.wait()
    if ident is None:
        # It ended before we could read it: any start value names a dead process now.
        ident = (p.pid, 1)
    return ident


class ChildrenCase(unittest.TestCase):
    """A case whose processes (self.children) are ended by pid, waited for and their pipes closed after each test."""

    def setUp(self):
        self.children = []

    def tearDown(self):
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait()
            for stream in (child.stdin, child.stdout, child.stderr):
                if stream is not None:
                    stream.close()


class SandboxCase(ChildrenCase):
    def setUp(self):
        super().setUp()
        self.sandbox = support.Sandbox()
        self.env = self.sandbox.env()

    def tearDown(self):
        super().tearDown()
        left = self.sandbox.cleanup()
        self.assertEqual(left, [], "processes left behind")

    def sleeper(self, seconds=300, env=None):
        p = spawn_sleeper(self.sandbox, seconds, env)
        self.children.append(p)
        support.wait_for(lambda: L.identity_of(p.pid), 10, "sleeper")
        return p

    def queue(self, warnings=None):
        state = L.ensure_state_dir(self.env)
        return L.Queue(os.path.join(state, L.key_dir_name("k")), (warnings if warnings is not None else []).append).ensure()

    def draft(self, pid, start, token=None, command="cmd"):
        return {
            "token": token or L.create_token(pid, start),
            "pid": pid,
            "start": start,
            "boot": L.process_table().boot_id(),
            "slots": 1,
            "key": "k",
            "command": command,
            "cwd": "/",
            "enqueuedAt": int(time.time() * 1000),
            "impl": "python",
        }


class ParsingTest(unittest.TestCase):
    def test_stat_is_split_after_the_last_parenthesis(self):
        fields = ["S", "1", "2", "3"] + ["0"] * 15 + ["424242"] + ["0"] * 30
        info = L.parse_stat(77, "77 (we (i)rd) name) " + " ".join(fields))
        self.assertEqual((info.pid, info.ppid, info.pgid, info.sid, info.start, info.state), (77, 1, 2, 3, 424242, "S"))
        self.assertEqual(info.comm, "we (i)rd) name")
        self.assertIsNone(L.parse_stat(1, "garbage"))

    def test_own_stat_matches_proc(self):
        info = L.process_table().get(os.getpid())
        self.assertEqual(info.pid, os.getpid())
        self.assertEqual(info.ppid, os.getppid())
        self.assertEqual(L.identity_of(os.getpid()), (os.getpid(), info.start))
        self.assertTrue(L.is_alive(os.getpid(), info.start))
        self.assertFalse(L.is_alive(os.getpid(), info.start + 1))

    def test_tokens_and_chains(self):
        token = L.create_token()
        pid, start = L.parse_token(token)
        self.assertEqual(pid, os.getpid())
        self.assertRegex(token, r"^\d+\.\d+\.[0-9a-f]{12}$")
        self.assertIsNone(L.parse_token("1.2.xyz"))
        self.assertIsNone(L.parse_token("1.2.abc"))  # fewer than 6 hex digits
        self.assertEqual(L.parse_chain("1.2.abcdef:junk::3.4.0123456789ab"), ["1.2.abcdef", "3.4.0123456789ab"])
        self.assertEqual(L.extend_chain("", "5.6.abcdef"), "5.6.abcdef")
        self.assertEqual(L.extend_chain("bad:1.2.abcdef", "5.6.abcdef"), "1.2.abcdef:5.6.abcdef")
        self.assertTrue(L.chain_has("1.2.abcdef:5.6.abcdef", "5.6.abcdef"))
        self.assertFalse(L.chain_has("1.2.abcdef0", "1.2.abcdef"))

    def test_key_dir_name_is_sha256_of_utf8(self):
        self.assertEqual(L.key_dir_name("/home/me/project"), "q-" + hashlib.sha256(b"/home/me/project").hexdigest()[:24])
        self.assertEqual(L.key_dir_name("/tmp/caf\u00e9"), "q-" + hashlib.sha256("/tmp/caf\u00e9".encode()).hexdigest()[:24])
        # A path with a byte that is not UTF-8 is hashed the way Node decodes it (U+FFFD).
        self.assertEqual(
            L.key_dir_name(os.fsdecode(b"/tmp/x\xff")), "q-" + hashlib.sha256("/tmp/x\ufffd".encode()).hexdigest()[:24]
        )

    def test_ticket_names(self):
        self.assertEqual(L.ticket_file_name(7, "1.2.abcdef"), "000000000007-1.2.abcdef.json")
        self.assertIsNotNone(L.TICKET_NAME.match("000000000007-1.2.abcdef.json"))
        self.assertIsNone(L.TICKET_NAME.match("7-1.2.abcdef.json"))
        self.assertIsNotNone(L.MARKER_NAME.match("1.2.abcdef.json"))

    def test_parse_ticket(self):
        self.assertIsNone(L.parse_ticket("{"))
        self.assertIsNone(L.parse_ticket("[]"))
        self.assertIsNone(L.parse_ticket('{"v":1,"token":"1.2.abcdef","pid":"1","start":2}'))
        t = L.parse_ticket('{"v":2,"token":"1.2.abcdef","pid":1,"start":2,"extra":true}')
        self.assertEqual(t["v"], 2)


class TemplatesTest(unittest.TestCase):
    def test_every_template_compiles_on_this_python(self):
        # seq_test_plugin imports pytest, so the unittest runs on 3.8 and 3.13 cannot import it: compile it.
        for name in ("seq_test_lock.py", "seq_subprocess.py", "seq_test_plugin.py"):
            with open(os.path.join(support.TEMPLATES, name)) as f:
                compile(f.read(), name, "exec")

    def test_template_versions_agree(self):
        import seq_subprocess  # noqa: F401

        with open(os.path.join(support.TEMPLATES, "seq_test_plugin.py")) as f:
            self.assertIn("TEMPLATE_VERSION = %d\n" % L.TEMPLATE_VERSION, f.read())
        # The writer moved into the CLI's setup code (issue 11 layout); in the repository it sits beside us.
        writer = os.path.join(
            os.path.dirname(support.TEMPLATES), "..", "..", "packages", "cli", "src", "setup", "pytest-files.ts"
        )
        with open(writer) as f:
            self.assertIn("export const TEMPLATE_VERSION = %d;" % L.TEMPLATE_VERSION, f.read())


class FormattingTest(unittest.TestCase):
    def test_format_duration_matches_the_cli(self):
        cases = [
            (0, "0 ms"),
            (12.4, "12 ms"),
            (12.5, "13 ms"),  # Math.round, not banker's rounding
            (999.4, "999 ms"),
            (1000, "1.0 s"),
            (3149, "3.1 s"),
            (59_949, "59.9 s"),
            (61_000, "1m01s"),
            (3_599_000, "59m59s"),
            (3_600_000, "1h00m"),
            (7_380_000, "2h03m"),
        ]
        for ms, text in cases:
            self.assertEqual(L.format_duration(ms), text, ms)

    def test_describe_wait_matches_the_cli(self):
        now = 1_000_000
        holder = L.Entry("n", "p", 1, "42.7.abcdef", 42, 7, {"command": "npm test", "startedAt": now - 3100}, True)
        self.assertEqual(
            L.describe_wait("/home/me/app", 2, 2, [holder], 800, False, now_ms=now),
            "waiting for the lock on /home/me/app: position 2 of 2, held by pid 42 (npm test) for 3.1 s; waited 800 ms",
        )
        nxt = L.Entry("n", "p", 1, "42.7.abcdef", 42, 7, {"command": "x" * 80, "startedAt": None}, True)
        self.assertEqual(
            L.describe_wait("k", 3, 3, [nxt], 1500, True, now_ms=now),
            "waiting for the nested lock on k: position 3 of 3, next by pid 42 (" + "x" * 59 + "\u2026); waited 1.5 s",
        )
        self.assertEqual(
            L.describe_wait("k", 1, 1, [], 0, False, now_ms=now),
            "waiting for the lock on k: position 1 of 1, another process is joining; waited 0 ms",
        )

    def test_wait_line_off_a_terminal_prints_once(self):
        out = io.StringIO()
        line = L.WaitLine(out)
        info = {"key": "k", "position": 2, "queue_length": 2, "ahead": [], "waited_ms": 0, "nested": False}
        line.update(info)
        line.update(dict(info, waited_ms=600))
        line.done("our turn after 1.2 s")
        self.assertEqual(
            out.getvalue(),
            "seq-test: waiting for the lock on k: position 2 of 2, another process is joining; waited 0 ms\n"
            "seq-test: our turn after 1.2 s\n",
        )


class StateDirAndKeyTest(SandboxCase):
    def test_state_dir_rules(self):
        env = {"SEQ_TEST_STATE_DIR": os.path.join(self.sandbox.dir, "s")}
        self.assertEqual(L.state_dir_path(env), env["SEQ_TEST_STATE_DIR"])
        xdg = os.path.join(self.sandbox.dir, "xdg")
        os.mkdir(xdg)
        self.assertEqual(L.state_dir_path({"XDG_RUNTIME_DIR": xdg}), os.path.join(xdg, "seq-test"))
        self.assertEqual(
            L.state_dir_path({"XDG_RUNTIME_DIR": xdg + "-missing", "TMPDIR": "/x"}), "/x/seq-test-%d" % os.getuid()
        )
        self.assertEqual(L.state_dir_path({"TMPDIR": ""}), "/tmp/seq-test-%d" % os.getuid())
        path = L.ensure_state_dir(env)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o700)

    def test_unsafe_state_dirs_are_refused(self):
        real = os.path.join(self.sandbox.dir, "real")
        os.mkdir(real, 0o700)
        link = os.path.join(self.sandbox.dir, "link")
        os.symlink(real, link)
        with self.assertRaisesRegex(L.SeqTestError, "symlink"):
            L.ensure_state_dir({"SEQ_TEST_STATE_DIR": link})
        open_dir = os.path.join(self.sandbox.dir, "open")
        os.mkdir(open_dir)
        os.chmod(open_dir, 0o777)
        # Not the default state dir: the fix offered is a private one, never a chmod of someone's directory.
        with self.assertRaisesRegex(L.SeqTestError, "mode 777 .*SEQ_TEST_STATE_DIR to a private directory"):
            L.ensure_state_dir({"SEQ_TEST_STATE_DIR": open_dir})
        a_file = os.path.join(self.sandbox.dir, "file")
        support.write(a_file, "")
        with self.assertRaises(L.SeqTestError) as raised:
            L.ensure_state_dir({"SEQ_TEST_STATE_DIR": a_file})
        self.assertEqual(raised.exception.exit_code, 125)

    def test_project_key(self):
        repo = os.path.join(self.sandbox.dir, "repo")
        deep = os.path.join(repo, "a", "b")
        os.makedirs(deep)
        support.write(os.path.join(repo, ".git"), "gitdir: elsewhere\n")  # a worktree's .git is a file
        self.assertEqual(L.project_key(cwd=deep, env={}), repo)
        self.assertEqual(L.project_key(cwd=deep, env={"SEQ_TEST_KEY": "lane"}), "lane")
        self.assertEqual(L.project_key(key="explicit", cwd=deep, env={"SEQ_TEST_KEY": "lane"}), "explicit")
        self.assertEqual(L.project_key(cwd=deep, env={"SEQ_TEST_KEY": ""}), repo)
        plain = os.path.join(self.sandbox.dir, "plain")
        os.mkdir(plain)
        link = os.path.join(self.sandbox.dir, "plain-link")
        os.symlink(plain, link)
        self.assertEqual(L.project_key(cwd=link, env={}), plain)


class ProjectSettingsTest(SandboxCase):
    def test_nearest_config_up_to_the_git_top_level(self):
        repo = os.path.join(self.sandbox.dir, "repo")
        sub = os.path.join(repo, "pkg", "tests")
        os.makedirs(sub)
        os.mkdir(os.path.join(repo, ".git"))
        support.write(os.path.join(self.sandbox.dir, L.RC_FILE), '{"key": "above the repo: never read"}')
        self.assertIsNone(L.load_project_settings(sub))
        support.write(os.path.join(repo, "package.json"), '{"name": "x", "seqTest": {"key": "shared", "slots": 2}}')
        found = L.load_project_settings(sub)
        self.assertEqual((found["key"], found["slots"]), ("shared", 2))
        support.write(os.path.join(repo, "pkg", "package.json"), '{"name": "no settings here"}')
        self.assertEqual(L.load_project_settings(sub)["key"], "shared")
        support.write(os.path.join(repo, "pkg", L.RC_FILE), '{"key": "pkg-lane", "timeout": 600}')
        self.assertEqual(L.load_project_settings(sub)["key"], "pkg-lane")
        self.assertEqual(L.resolve_lock_settings(cwd=sub, env={}), ("pkg-lane", 1))
        self.assertEqual(L.resolve_lock_settings(cwd=sub, env={"SEQ_TEST_KEY": "env"}), ("env", 1))
        self.assertEqual(L.resolve_lock_settings(key="flag", slots=3, cwd=sub, env={"SEQ_TEST_KEY": "env"}), ("flag", 3))

    def test_bad_settings_are_errors_naming_the_file(self):
        d = os.path.join(self.sandbox.dir, "bad")
        os.makedirs(d)
        rc = os.path.join(d, L.RC_FILE)
        for text, message in [
            ("{", "not valid JSON"),
            ('{"kye": "x"}', '"kye" is not a seq-test setting'),
            ('{"key": ""}', '"key" must be a non-empty string'),
            ('{"slots": 0}', '"slots" must be a whole number'),
            ("[]", "must be a JSON object"),
        ]:
            support.write(rc, text)
            with self.assertRaisesRegex(L.SeqTestError, message):
                L.load_project_settings(d)
        os.unlink(rc)
        support.write(os.path.join(d, "package.json"), "{ broken")
        self.assertIsNone(L.load_project_settings(d))


class QueueTest(SandboxCase):
    def test_bakery_order_and_deciding(self):
        q = self.queue()
        me = L.identity_of(os.getpid())
        other = self.sleeper()
        theirs = q.enqueue(self.draft(other.pid, L.identity_of(other.pid)[1]))
        mine = q.enqueue(self.draft(*me))
        self.assertEqual((theirs.number, mine.number), (1, 2))
        self.assertEqual(os.listdir(q.choosing_dir), [])
        with open(mine.path) as f:
            content = json.load(f)
        self.assertEqual(content["v"], 1)
        self.assertEqual(content["number"], 2)
        self.assertIsNone(content["startedAt"])
        self.assertEqual(content["impl"], "python")
        self.assertEqual(os.stat(mine.path).st_mode & 0o777, 0o600)
        d = q.decide(q.read(), mine, 1)
        self.assertFalse(d.holding)
        self.assertEqual(d.position, 2)
        self.assertEqual([e.pid for e in d.ahead], [other.pid])
        self.assertTrue(q.decide(q.read(), mine, 2).holding)  # two slots
        q.remove(theirs)
        self.assertTrue(q.decide(q.read(), mine, 1).holding)
        q.mark_started(mine, 1234)
        with open(mine.path) as f:
            self.assertEqual(json.load(f)["startedAt"], 1234)
        q.remove(mine)
        q.remove(mine)  # idempotent
        self.assertEqual(os.listdir(q.tickets_dir), [])

    def test_a_live_choosing_marker_blocks_and_a_dead_one_is_removed(self):
        q = self.queue()
        mine = q.enqueue(self.draft(*L.identity_of(os.getpid())))
        other = self.sleeper()
        token = L.create_token(*L.identity_of(other.pid))
        L.write_atomic(q.choosing_dir, os.path.join(q.choosing_dir, token + ".json"), token, {"v": 1})
        d = q.decide(q.read(), mine, 1)
        self.assertTrue(d.blocked_by_choosing)
        self.assertFalse(d.holding)
        dead_token = L.create_token(*dead_identity(self.sandbox))
        support.write(os.path.join(q.choosing_dir, dead_token + ".json"), "{}")
        state = q.read()
        self.assertEqual(state.dead_markers, [dead_token])
        q.tidy(state, lambda token: None)
        self.assertFalse(os.path.exists(os.path.join(q.choosing_dir, dead_token + ".json")))

    def test_dead_tickets_are_tidied_with_their_nested_queue(self):
        q = self.queue()
        pid, start = dead_identity(self.sandbox)
        dead = q.enqueue(self.draft(pid, start))
        os.makedirs(os.path.join(q.nested_dir, dead.token, "tickets"))
        state = q.read()
        self.assertFalse(state.tickets[0].alive)
        reaped = []
        q.tidy(state, reaped.append)
        self.assertEqual(reaped, [dead.token])
        self.assertEqual(os.listdir(q.tickets_dir), [])
        self.assertFalse(os.path.exists(os.path.join(q.nested_dir, dead.token)))

    def test_a_ticket_from_another_boot_is_dead(self):
        q = self.queue()
        draft = self.draft(*L.identity_of(os.getpid()))
        draft["boot"] = "another-boot"
        q.enqueue(draft)
        self.assertFalse(q.read().tickets[0].alive)

    def test_garbage_foreign_newer_and_stale_files(self):
        warnings = []
        q = self.queue(warnings)
        other = self.sleeper()
        token = L.create_token(*L.identity_of(other.pid))
        garbage = os.path.join(q.tickets_dir, L.ticket_file_name(3, token))
        support.write(garbage, '{"v":1,"tok')
        support.write(os.path.join(q.tickets_dir, "README"), "hello")
        newer_token = L.create_token(*L.identity_of(os.getpid()))
        newer = self.draft(*L.identity_of(os.getpid()), token=newer_token)
        newer.update({"v": 3, "number": 4})
        support.write(os.path.join(q.tickets_dir, L.ticket_file_name(4, newer_token)), json.dumps(newer))
        # Temp files are judged by their writer: a dead writer's goes, a live writer's and a token-less one
        # (an older writer's) stay, however old.
        stale = os.path.join(q.tickets_dir, ".tmp-%s-0123456789abcdef" % L.create_token(*dead_identity(self.sandbox)))
        support.write(stale, "{")
        fresh = os.path.join(q.tickets_dir, ".tmp-%s-fedcba9876543210" % token)
        support.write(fresh, "{")
        tokenless = os.path.join(q.tickets_dir, ".tmp-0123456789abcdef")
        support.write(tokenless, "{")
        os.utime(tokenless, (time.time() - 60, time.time() - 60))
        state = q.read()
        q.read()  # warnings are given once
        self.assertEqual([(e.number, e.alive, e.ticket is None) for e in state.tickets], [(3, True, True), (4, True, False)])
        self.assertFalse(os.path.exists(stale))
        self.assertTrue(os.path.exists(fresh))
        self.assertTrue(os.path.exists(tokenless))
        self.assertEqual(len(warnings), 3, warnings)
        self.assertTrue(any("garbage" in w for w in warnings))
        self.assertTrue(any("foreign" in w for w in warnings))
        self.assertTrue(any("version 3" in w for w in warnings))
        # The next number is above every ticket, garbage and newer ones included.
        mine = q.enqueue(self.draft(*L.identity_of(os.getpid())))
        self.assertEqual(mine.number, 5)


class AcquireTest(SandboxCase):
    def holder(self, key, command="holder"):
        """A live process (sleep) holding the lock of `key` through a ticket written on its behalf."""
        other = self.sleeper()
        state = L.ensure_state_dir(self.env)
        q = L.Queue(os.path.join(state, L.key_dir_name(key))).ensure()
        entry = q.enqueue(self.draft(*L.identity_of(other.pid), command=command))
        q.mark_started(entry)
        return other, q, entry

    def test_uncontended(self):
        lock = L.acquire("cmd", key="solo", env=self.env)
        try:
            self.assertFalse(lock.nested)
            self.assertEqual(lock.chain, lock.token)
            self.assertTrue(os.path.exists(lock.entry.path))
            with open(os.path.join(os.path.dirname(lock.queue.tickets_dir), "key")) as f:
                self.assertEqual(f.read(), "solo\n")
        finally:
            lock.release()
        self.assertFalse(os.path.exists(lock.entry.path))

    def test_the_ticket_records_our_parent(self):
        # docs/PROTOCOL.md "Ticket content": the optional `parent`, read by `seq-test status` (re-parented runs).
        lock = L.acquire("cmd", key="parent", env=self.env)
        try:
            with open(lock.entry.path) as f:
                ticket = json.load(f)
        finally:
            lock.release()
        parent = L.process_table().get(os.getppid())
        self.assertEqual(ticket["parent"], {"pid": os.getppid(), "start": parent.start, "name": parent.comm})

    def test_no_wait_and_wait_timeout(self):
        self.holder("busy", "npm test")
        with self.assertRaises(L.SeqTestError) as raised:
            L.acquire("cmd", key="busy", env=self.env, no_wait=True)
        self.assertEqual(raised.exception.exit_code, 123)
        self.assertIn("npm test", str(raised.exception))
        lines = []
        began = time.monotonic()
        with self.assertRaises(L.SeqTestError) as raised:
            L.acquire("cmd", key="busy", env=self.env, wait_timeout=0.4, on_wait=lambda info: lines.append(L.describe_wait(**info)))
        self.assertGreaterEqual(time.monotonic() - began, 0.4)
        self.assertEqual(raised.exception.exit_code, 122)
        self.assertRegex(lines[0], r"^waiting for the lock on busy: position 2 of 2, held by pid \d+ \(npm test\) for ")
        q = L.Queue(os.path.join(self.sandbox.state_dir, L.key_dir_name("busy")))
        self.assertEqual(len(q.read().tickets), 1, "the waiter's ticket was withdrawn")

    def test_a_killed_holder_is_passed_over_and_its_leftovers_ended(self):
        other, q, entry = self.holder("killed")
        leftover = self.sleeper(env=self.sandbox.env(SEQ_TEST_TOKEN="0.0.abcdef:" + entry.token))
        warnings = []
        result = {}

        def wait():
            result["lock"] = L.acquire("cmd", key="killed", env=self.env, on_warning=warnings.append, reap_grace=5)

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.3)
        self.assertNotIn("lock", result)  # the holder is alive: still waiting
        killed_at = time.monotonic()
        other.kill()
        other.wait()
        t.join(30)
        self.assertIn("lock", result)
        result["lock"].release()
        self.assertLess(time.monotonic() - killed_at, 10)
        leftover.wait(10)
        self.assertEqual(leftover.returncode, -signal.SIGTERM)
        self.assertTrue(any("left 1 process(es) behind" in w for w in warnings), warnings)

    def test_nested_in_a_live_holder(self):
        # The holder must be this process or an ancestor (trusted_chain): here, a ticket on our own behalf.
        state = L.ensure_state_dir(self.env)
        q = L.Queue(os.path.join(state, L.key_dir_name("nest"))).ensure()
        entry = q.enqueue(self.draft(*L.identity_of(os.getpid()), command="holder"))
        q.mark_started(entry)
        env = self.sandbox.env(SEQ_TEST_TOKEN="junk:" + entry.token)
        began = time.monotonic()
        lock = L.acquire("inner", key="nest", env=env)
        try:
            self.assertLess(time.monotonic() - began, 20)
            self.assertTrue(lock.nested)
            self.assertEqual(lock.queue.dir, os.path.join(q.nested_dir, entry.token))
            self.assertEqual(lock.chain, entry.token + ":" + lock.token)
            # nested_only: outside any holder nothing is joined.
            self.assertIsNone(L.acquire("x", key="nest", env=self.env, nested_only=True))
            # A second nested run waits for the first (one at a time among themselves).
            with self.assertRaises(L.SeqTestError):
                L.acquire("inner2", key="nest", env=env, no_wait=True)
        finally:
            lock.release()
            q.remove(entry)

    def test_a_borrowed_token_does_not_nest(self):
        # A live holder that is not our ancestor: its token, copied into our environment, counts for nothing.
        other, q, entry = self.holder("borrowed")
        env = self.sandbox.env(SEQ_TEST_TOKEN=entry.token)
        with self.assertRaises(L.SeqTestError) as caught:
            L.acquire("outsider", key="borrowed", env=env, no_wait=True)
        self.assertEqual(caught.exception.exit_code, 123)
        other.kill()

    def test_a_vanished_ticket_rejoins(self):
        other, q, entry = self.holder("gone")
        warnings = []
        result = {}
        t = threading.Thread(
            target=lambda: result.setdefault("lock", L.acquire("me", key="gone", env=self.env, on_warning=warnings.append))
        )
        t.start()
        mine = support.wait_for(
            lambda: [n for n in support.ticket_names(q.tickets_dir) if str(os.getpid()) + "." in n], 20, "our ticket"
        )
        os.unlink(os.path.join(q.tickets_dir, mine[0]))
        support.wait_for(lambda: any("vanished" in w for w in warnings), 20, "the rejoin warning")
        q.remove(entry)
        t.join(30)
        self.assertTrue(os.path.exists(result["lock"].entry.path))  # joined again (same token, a fresh number)
        result["lock"].release()

    def test_fifo_among_threads_of_waiters(self):
        """Holders never overlap and start in ticket order (threads stand in for processes here)."""
        other, q, entry = self.holder("fifo")
        log = []
        lock_log = threading.Lock()
        def contender(i):
            # Each thread needs its own token (same pid and start, different random part).
            lock = L.acquire("c%d" % i, key="fifo", env=self.env)
            with lock_log:
                log.append(("start", i, lock.entry.number))
            time.sleep(0.05)
            with lock_log:
                log.append(("end", i, lock.entry.number))
            lock.release()

        threads = []
        for i in range(4):
            t = threading.Thread(target=contender, args=(i,))
            t.start()
            threads.append(t)
            support.wait_for(lambda: len(support.ticket_names(q.tickets_dir)) >= i + 2, 20, "ticket %d" % i)
        numbers = support.ticket_names(q.tickets_dir)
        self.assertEqual(len(numbers), 5)
        q.remove(entry)
        for t in threads:
            t.join(60)
        starts = [n for kind, _i, n in log if kind == "start"]
        self.assertEqual(starts, sorted(starts))
        for a in range(0, len(log), 2):
            self.assertEqual(log[a][0], "start")
            self.assertEqual(log[a + 1][0], "end")
            self.assertEqual(log[a][1], log[a + 1][1])


class WakerTest(SandboxCase):
    """Waker: what wakes a waiter. Elapsed times here only check that a wait did not end early or did end
    long before its bound (generous bounds: the machine may be loaded)."""

    def setUp(self):
        super().setUp()
        if not sys.platform.startswith("linux"):
            self.skipTest("inotify and pidfds are Linux only")

    def line(self, *owners):
        """A queue with a ticket per owner (Popen), then ours: (queue, their entries, ours)."""
        q = self.queue()
        ahead = [q.enqueue(self.draft(*L.identity_of(o.pid))) for o in owners]
        mine = q.enqueue(self.draft(*L.identity_of(os.getpid())))
        return q, ahead, mine

    def waker(self, q, ahead, mine, slots=1):
        waker = L.Waker(q, poll=30)
        self.addCleanup(waker.close)
        self.assertIsNotNone(waker.fd, "inotify through ctypes should work on Linux")
        self.assertTrue(waker.watch_for(ahead, slots, mine, []), "a first watch is news: read once more")
        self.assertFalse(waker.watch_for(ahead, slots, mine, []), "the same watch again is not")
        return waker

    def timed_wait(self, waker, seconds):
        began = time.monotonic()
        waker.wait(seconds)
        return time.monotonic() - began

    def test_the_ticket_ahead_going_wakes_it(self):
        q, ahead, mine = self.line(self.sleeper())
        waker = self.waker(q, ahead, mine)
        threading.Timer(0.2, lambda: q.remove(ahead[0])).start()
        self.assertLess(self.timed_wait(waker, 60), 30)

    def test_the_end_of_the_owner_ahead_wakes_it_with_no_timer(self):
        owner = self.sleeper()
        q, ahead, mine = self.line(owner)
        waker = self.waker(q, ahead, mine)
        if not hasattr(os, "pidfd_open"):
            # Python 3.8: no pidfd, so the poll must find a SIGKILLed owner (test_a_killed_holder_...).
            self.assertFalse(waker.covered)
            return
        self.assertTrue(waker.covered, "a pidfd on the owner ahead: nothing needs a timer")
        threading.Timer(0.2, owner.kill).start()
        self.assertLess(self.timed_wait(waker, 60), 30)
        self.assertFalse(waker.covered, "its end was told: until the next read, the poll judges it")

    def test_only_the_ticket_just_ahead_and_ours_are_watched(self):
        first, second = self.sleeper(), self.sleeper()
        q, ahead, mine = self.line(first, second)
        waker = self.waker(q, ahead, mine)
        self.assertEqual(sorted(waker.files), sorted([ahead[1].path, mine.path]))
        self.assertTrue(waker.idle)
        # A newcomer behind us, and the first ticket starting to hold, cannot end our wait: no wakeup.
        q.enqueue(self.draft(*L.identity_of(self.sleeper().pid)))
        q.mark_started(ahead[0])
        self.assertGreaterEqual(self.timed_wait(waker, 0.5), 0.4)
        # Next in line (one ticket ahead): choosing/ too, and a newcomer choosing its number wakes us.
        self.assertTrue(waker.watch_for(ahead[1:], 1, mine, []))
        self.assertFalse(waker.idle)
        threading.Timer(0.2, lambda: support.write(os.path.join(q.choosing_dir, "x"), "")).start()
        self.assertLess(self.timed_wait(waker, 60), 30)

    def test_our_own_ticket_removed_wakes_it(self):
        q, ahead, mine = self.line(self.sleeper())
        waker = self.waker(q, ahead, mine)
        threading.Timer(0.2, lambda: q.remove(mine)).start()
        self.assertLess(self.timed_wait(waker, 60), 30)

    def test_a_pid_reused_before_its_pidfd_was_opened_is_caught(self):
        owner = self.sleeper()
        q, ahead, mine = self.line(owner)
        # The ticket names our sleeper's pid with another start time: the pid of an owner long gone.
        stale = L.Entry(ahead[0].name, ahead[0].path, 1, ahead[0].token, owner.pid, ahead[0].start - 1, None, True)
        waker = L.Waker(q, poll=30)
        self.addCleanup(waker.close)
        self.assertTrue(waker.watch_for([stale], 1, mine, []))
        self.assertEqual(waker.pidfds, {})
        self.assertFalse(waker.covered, "never judged covered by the stranger's pidfd")

    def test_without_inotify_it_polls(self):
        os.environ["SEQ_TEST_NO_INOTIFY"] = "1"
        try:
            q, ahead, mine = self.line(self.sleeper())
            waker = L.Waker(q, poll=0.05)
        finally:
            del os.environ["SEQ_TEST_NO_INOTIFY"]
        self.assertIsNone(waker.fd)
        self.assertFalse(waker.watch_for(ahead, 1, mine, []))
        self.assertFalse(waker.covered)
        self.assertLess(self.timed_wait(waker, 60), 30)


# Waits for a round number on stdin, appends one run (peak = its writer number) to that round's history.
HISTORY_WRITER = """
import sys
sys.path.insert(0, sys.argv[1])
import seq_test_lock as L
directory, index = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
for line in sys.stdin:
    problem = L.record_run(directory, {"argv": ["round", line.strip()], "cwd": "/"},
        {"peakBytes": index + 1, "durationMs": 1, "endedAt": int(line), "measure": "rss"})
    print(problem or "ok", flush=True)
"""


class PredictionTest(unittest.TestCase):
    """predict_peak: the rule of docs/PROTOCOL.md ("History"), as @seq-test/core's predictPeak."""

    MiB = 1024 ** 2

    def peaks(self, *mib):
        return [{"peakBytes": m * self.MiB, "durationMs": 1, "endedAt": 1, "measure": "pss"} for m in mib]

    def ceil(self, x):
        import math

        return int(math.ceil(x))

    def test_a_high_percentile_not_the_mean(self):
        self.assertIsNone(L.predict_peak([]))
        self.assertEqual(L.predict_peak(self.peaks(*([100] * 9 + [1000]))), self.ceil(100 * self.MiB * 1.15))
        self.assertEqual(
            L.predict_peak(self.peaks(*([100] * 8 + [1000, 1000]))), self.ceil((1000 + 900 / 9) * self.MiB * 1.15)
        )
        self.assertEqual(L.predict_peak(self.peaks(*([5000] + [100] * 10))), self.ceil(105 * self.MiB))

    def test_the_margin_is_wide_while_few_runs_are_known(self):
        self.assertEqual(
            [L.predict_margin(n, 100, 100, 100) for n in (1, 2, 3, 4, 5, 6, 10, 20)],
            [0.75, 0.6, 0.45, 0.3, 0.05, 0.05, 0.05, 0.05],
        )
        self.assertEqual([L.predict_margin(n, 100, 90, 100) for n in (4, 5, 10)], [0.3, 0.15, 0.15])
        self.assertEqual([L.predict_margin(n, 100, 100, 110) for n in (4, 5, 10)], [0.3, 0.15, 0.15])
        self.assertEqual(L.steady_margin(400, 398, 400), 0.05 + 2 / 400)
        self.assertEqual(L.steady_margin(400, 398, 404), 0.05 + 6 / 400)
        equal = [L.predict_peak(self.peaks(*([100] * n))) for n in (1, 2, 3, 4, 5, 10)]
        self.assertEqual(equal, [self.ceil(m * self.MiB) for m in (175, 160, 145, 130, 105, 105)])

    def test_peaks_that_agree_get_the_least_margin(self):
        vitest = self.peaks(432, 433, 433, 434, 434, 435, 435, 435, 436, 436)
        p, lowest = 436 * self.MiB, 432 * self.MiB
        self.assertEqual(L.predict_peak(vitest), self.ceil((p + (p - lowest) / 9) * (1 + 0.05 + (p - lowest) / p)))
        self.assertEqual(
            L.predict_peak(self.peaks(*([380] + [436] * 9))), self.ceil((436 + 56 / 9) * self.MiB * 1.15)
        )
        above = L.predict_peak(self.peaks(*([436] * 9 + [480])))
        self.assertEqual(above, self.ceil(436 * self.MiB * 1.15))
        self.assertGreater(above, 480 * self.MiB)

    def test_spread_peaks_raise_it(self):
        self.assertEqual(L.predict_peak(self.peaks(100, 200)), self.ceil((200 + 100 / 1) * self.MiB * 1.15))
        self.assertEqual(L.predict_peak(self.peaks(501, 489, 365, 363)), self.ceil(501 * self.MiB * 1.3))
        self.assertEqual(
            L.predict_peak(self.peaks(627, 501, 489, 365, 363)), self.ceil((627 + 264 / 4) * self.MiB * 1.15)
        )
        ten = self.peaks(*[(i + 1) * 100 for i in range(10)])
        self.assertEqual(L.predict_peak(ten), self.ceil((900 + 800 / 9) * self.MiB * 1.15))

    def test_one_run_of_the_jest_fixture_at_its_lowest_predicts_its_highest(self):
        for low in (363, 365):
            self.assertGreaterEqual(L.predict_peak(self.peaks(low)), 627 * self.MiB)


class AdmissionFiguresTest(unittest.TestCase):
    """AutoAdmission on live figures, as @seq-test/core's admissionFor (packages/core/test/memory-admission)."""

    GiB = 1024 ** 3

    def admit(self, sequence, need, owner=-1, budget=None):
        """The verdict for a head predicted at `need` behind one real holder (this process, well under 1 GiB,
        predicted 1 GiB), with available memory read as `sequence` (GiB, None: unreadable) in turn; `owner`:
        the head's owner pid (-1: none, so nothing is taken off its need)."""
        auto = L.AutoAdmission(
            tempfile.mkdtemp(), {"argv": ["x"], "cwd": "/"}, max_slots=4, reserve=1, budget=budget
        )
        self.addCleanup(shutil.rmtree, auto.queue_dir)
        auto.predicted = need
        calls = []

        def read():
            g = sequence[min(len(calls), len(sequence) - 1)]
            calls.append(g)
            return None if g is None else {"bytes": int(g * self.GiB), "source": "test", "total": 16 * self.GiB}

        auto._available = read
        me = L.identity_of(os.getpid())
        ticket = {"startedAt": 1, "admission": {"mode": "auto", "maxSlots": 4, "fingerprint": "f",
                                                "predictedBytes": self.GiB, "endedAt": None}}
        holder = L.Entry("000000000001-h.json", "/nonexistent", 1, "h", me[0], me[1], ticket, True)
        return auto._admit([holder], owner), calls

    def test_memory_gained_while_the_holders_are_measured_is_not_counted_as_free(self):
        # Found in the memory-admission benchmark: holders ramping up gained 0.9 GiB while the head measured
        # their trees; counted as still free and as growth already done, it admitted a third run into an OOM kill.
        for sequence in ([10, 10, 8], [10, 8, 10]):
            (admit, text), calls = self.admit(sequence, int(8.5 * self.GiB))
            self.assertEqual(len(calls), 3)  # the cheap pass, then before and after the measurement
            self.assertFalse(admit, text)
        (admit, text), _ = self.admit([10], int(8.5 * self.GiB))
        self.assertTrue(admit, text)  # read steadily, the same figures admit

    def test_a_figure_unreadable_on_either_side_admits_no_one(self):
        for sequence in ([10, None, 10], [10, 10, None]):
            (admit, text), _ = self.admit(sequence, 1)
            self.assertFalse(admit, text)

    def test_the_heads_own_tree_is_taken_off_what_it_needs_except_with_a_budget(self):
        MiB = 1024 ** 2
        (_, text), _ = self.admit([10], 100 * MiB)
        self.assertTrue(text.startswith("needs ~100 MiB,"), text)
        (_, text), _ = self.admit([10], 100 * MiB, owner=os.getpid())  # this Python process: several MiB
        needed = float(text.split("~")[1].split(" ")[0])
        self.assertLess(needed, 98, text)
        (_, text), _ = self.admit([10], 100 * MiB, owner=os.getpid(), budget=10 * self.GiB)
        self.assertTrue(text.startswith("needs ~100 MiB,"), text)
        self.assertEqual(
            L.decide_admission(4, 0, [(MiB, 0)], 500 * MiB, 600 * MiB, 100 * MiB, None, 0)[:2], (False, "memory")
        )
        self.assertEqual(
            L.decide_admission(4, 0, [(MiB, 0)], 500 * MiB, 600 * MiB, 100 * MiB, None, 200 * MiB)[:2], (True, "fits")
        )
        self.assertEqual(
            L.decide_admission(4, 0, [(MiB, 0)], 500 * MiB, 600 * MiB, 100 * MiB, None, float("nan"))[1], "invalid"
        )


class PeakSamplingTest(unittest.TestCase):
    """The holder's peak sampling reads Pss only when RSS says the tree may be higher, or RECHECK_SECONDS later
    (as @seq-test/core's PeakRecorder: packages/core/test/memory-measure.test.ts)."""

    MiB = 1024 ** 2

    def test_reads_only_when_rss_may_beat_the_peak_and_rechecks_for_copy_on_write(self):
        data = bytearray(120 * self.MiB)
        for i in range(0, len(data), 4096):
            data[i] = 1
        go_r, go_w = os.pipe()
        done_r, done_w = os.pipe()
        kid = os.fork()
        if kid == 0:  # shares the 120 MiB until it writes them on the word
            os.read(go_r, 1)
            for i in range(0, len(data), 4096):
                data[i] = 2
            os.write(done_w, b"x")
            time.sleep(60)
            os._exit(0)
        self.addCleanup(lambda: (os.kill(kid, signal.SIGKILL), os.waitpid(kid, 0)))
        auto = L.AutoAdmission(tempfile.mkdtemp(), {"argv": ["x"], "cwd": "/"})
        self.addCleanup(shutil.rmtree, auto.queue_dir)
        time.sleep(0.3)  # the new process's RSS counters settle
        auto._sample()
        shared = auto._peak
        self.assertLess(shared, 250 * self.MiB)  # the 120 MiB once (plus this interpreter), not once per process
        reads = auto.pss_reads
        for _ in range(5):
            auto._sample()
        self.assertEqual(auto.pss_reads, reads)  # nothing moved: no read
        os.write(go_w, b"x")
        os.read(done_r, 1)
        time.sleep(L.RECHECK_SECONDS + 0.05)
        auto._sample()
        self.assertGreater(auto._peak, shared + 100 * self.MiB)  # both copies, found by the recheck

    def _auto(self):
        auto = L.AutoAdmission(tempfile.mkdtemp(), {"argv": ["x"], "cwd": "/"})
        self.addCleanup(shutil.rmtree, auto.queue_dir)
        return auto

    def test_a_process_growing_by_private_pages_is_followed_from_its_rss_without_reads(self):
        # A `pytest -n 4` tree ramping up to 1.3 GiB was read whole at every sample it grew (as @seq-test/core's
        # "follows a process that grows by private pages").
        auto = self._auto()
        auto._sample()
        reads = auto.pss_reads
        kept = []
        for _ in range(10):
            data = bytearray(20 * self.MiB)
            for i in range(0, len(data), 4096):
                data[i] = 1
            kept.append(data)
            auto._sample()
        self.assertEqual(auto.pss_reads, reads)
        truth = L.tree_memory(os.getpid())[0]
        self.assertGreaterEqual(auto._peak, truth - self.MiB)
        self.assertLess(auto._peak, truth + 2 * self.MiB)

    def test_a_process_forked_after_its_parent_was_read_makes_the_parent_read_again(self):
        data = bytearray(120 * self.MiB)
        for i in range(0, len(data), 4096):
            data[i] = 1
        auto = self._auto()
        auto._sample()
        alone = auto._peak
        kids = []
        for _ in range(2):
            kid = os.fork()
            if kid == 0:  # keeps sharing the 120 MiB
                time.sleep(60)
                os._exit(0)
            kids.append(kid)
            self.addCleanup(lambda kid=kid: (os.kill(kid, signal.SIGKILL), os.waitpid(kid, 0)))
        time.sleep(0.3)  # the new processes' RSS counters settle
        auto._sample()
        # Three processes share the 120 MiB, 40 each: the parent at its old figure would make ~200 more.
        self.assertLess(auto._peak, alone + 30 * self.MiB)

    def test_a_process_is_read_again_when_its_resident_file_pages_moved(self):
        directory = tempfile.mkdtemp(prefix="seq-test-file-pages-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "pages")
        with open(path, "wb") as f:
            f.write(b"\1" * (64 * self.MiB))
        # A mapper outside our tree (its parent exits at once: it is re-parented away) reads every page of the
        # file: mapped by it and by us, the 64 MiB count 32 in each Pss.
        mapper = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import mmap, os, sys, time\n"
                "if os.fork():\n    os._exit(0)\n"
                "m = mmap.mmap(os.open(sys.argv[1], os.O_RDONLY), 0, prot=mmap.PROT_READ)\n"
                "total = sum(m[i] for i in range(0, len(m), 4096))\n"
                "print(os.getpid(), flush=True)\ntime.sleep(60)",
                path,
            ],
            stdout=subprocess.PIPE,
        )
        outside = int(mapper.stdout.readline())
        mapper.wait()
        mapper.stdout.close()
        self.addCleanup(os.kill, outside, signal.SIGKILL)  # ours: we started it, by the pid it printed
        self.assertNotIn(outside, L.descendants_of(os.getpid()))
        auto = self._auto()
        auto._sample()
        before = auto._peak
        with open(path, "rb") as f:
            import mmap

            m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
            self.addCleanup(m.close)
            total = sum(m[i] for i in range(0, len(m), 4096))
            self.assertEqual(total, 64 * self.MiB // 4096)
        auto._sample()
        truth = L.tree_memory(os.getpid())[0]
        self.assertGreater(truth, before + 28 * self.MiB)  # half of the 64 MiB
        self.assertGreaterEqual(auto._peak, truth - self.MiB)
        self.assertLess(auto._peak, truth + 8 * self.MiB)  # not the whole 64 MiB our RSS gained

    def test_a_tree_sharing_no_anonymous_page_is_not_read_again_at_the_recheck(self):
        auto = L.AutoAdmission(tempfile.mkdtemp(), {"argv": ["x"], "cwd": "/"})
        self.addCleanup(shutil.rmtree, auto.queue_dir)
        auto._sample()
        reads = auto.pss_reads
        time.sleep(L.RECHECK_SECONDS + 0.05)
        auto._sample()
        self.assertEqual(auto.pss_reads, reads)


class HistoryWritersTest(ChildrenCase):
    """Runs that end together append to one history without losing one another's entries (issue 17)."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="seq-test-history-")

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_eight_writers_at_once_round_after_round_lose_nothing(self):
        writers = 8
        for index in range(writers):
            self.children.append(
                subprocess.Popen(
                    [sys.executable, "-c", HISTORY_WRITER, support.TEMPLATES, self.dir, str(index)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    universal_newlines=True,
                )
            )
        self.assertEqual([c.stdout.readline().strip() for c in self.children], ["ready"] * writers)
        for round_ in range(1, 13):
            for child in self.children:  # the gate: every writer is released by one line
                child.stdin.write("%d\n" % round_)
                child.stdin.flush()
            self.assertEqual([c.stdout.readline().strip() for c in self.children], ["ok"] * writers)
            runs, problems = L.read_history(self.dir, L.fingerprint_of(["round", str(round_)], "/"))
            self.assertEqual(problems, [])
            self.assertEqual(sorted(r["peakBytes"] for r in runs), list(range(1, writers + 1)))
        self.assertEqual([n for n in os.listdir(os.path.join(self.dir, "history")) if not n.endswith(".json")], [])

    def test_dead_writers_lock_is_removed_live_writers_lock_bounds_the_wait(self):
        what = {"argv": ["npm", "test"], "cwd": "/"}
        fp = L.fingerprint_of(what["argv"], what["cwd"])
        run = {"peakBytes": 1, "durationMs": 1, "endedAt": 1, "measure": "pss"}
        history = os.path.join(self.dir, "history")
        lock = os.path.join(history, fp + ".lock")
        os.mkdir(history, 0o700)
        with open(lock, "w") as f:  # our pid with another start time: a dead writer whose pid was reused
            f.write("%d.1.abcdef" % os.getpid())
        self.assertIsNone(L.record_run(self.dir, what, run))
        target = os.path.join(self.dir, "target")
        with open(target, "w") as f:
            f.write("untouched")
        os.symlink(target, lock)
        self.assertIsNone(L.record_run(self.dir, what, run))
        with open(target) as f:
            self.assertEqual(f.read(), "untouched")
        self.assertEqual(os.listdir(history), [fp + ".json"])
        live = L.create_token()
        with open(lock, "w") as f:
            f.write(live)
        L.HISTORY_LOCK_WAIT, saved = 0.2, L.HISTORY_LOCK_WAIT
        try:
            problem = L.record_run(self.dir, what, run)
        finally:
            L.HISTORY_LOCK_WAIT = saved
        self.assertRegex(problem, "is held by .* for over 200 ms; this run is not recorded")
        with open(lock) as f:
            self.assertEqual(f.read(), live)
        self.assertEqual(len(L.read_history(self.dir, fp)[0]), 2)


if __name__ == "__main__":
    unittest.main()
