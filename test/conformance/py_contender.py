"""A Python contender for the conformance tests: joins a seq-test queue through the pytest bridge's lock
module (integrations/pytest/templates/seq_test_lock.py), then logs and runs like `seq-test run` would.

usage: py_contender.py [--hold-until FILE] [--log FILE] [--quiet] [--as-run] [-- command ...]

While holding it appends "S <ticket> <ns>" / "E <ticket> <ns>" to --log, waits for --hold-until to exist
(if given), then runs the command (if given) with SEQ_TEST_TOKEN/SEQ_TEST_TICKET set, and releases.
--as-run: in "slots": "auto" mode, the command's fingerprint is the one `seq-test run` gives it (its argv
and the real path of the cwd, no runner), so that both languages learn from and add to one history.
Prints "TICKET <ticket>" on stdout as soon as its ticket is written (SIGTERM or SIGINT while waiting
withdraws it). Exit: the command's status, or the
lock's error code (122/123/125).
"""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integrations", "pytest", "templates"))

import seq_test_lock as L  # noqa: E402


def main(argv):
    hold_until = log = None
    quiet = False
    as_run = False
    command = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--hold-until":
            hold_until = argv[i + 1]
            i += 2
        elif arg == "--log":
            log = argv[i + 1]
            i += 2
        elif arg == "--quiet":
            quiet = True
            i += 1
        elif arg == "--as-run":
            as_run = True
            i += 1
        elif arg == "--":
            command = argv[i + 1 :]
            break
        else:
            sys.stderr.write("py_contender: unknown argument %s\n" % arg)
            return 125

    line = L.WaitLine(sys.stderr, quiet)
    try:
        lock = L.acquire(
            " ".join(command) or "py_contender",
            on_enqueue=lambda entry: announce(entry.name[: -len(".json")]),
            on_wait=line.update,
            wait_report=line.report_every,
            on_warning=lambda message: sys.stderr.write("%s warning: %s\n" % (L.PREFIX, message)),
            auto_what={"argv": command, "cwd": os.path.realpath(os.getcwd())} if as_run else None,
        )
    except L.SeqTestError as error:
        line.done(None)
        sys.stderr.write("%s error: %s\n" % (L.PREFIX, error))
        return error.exit_code
    line.done("our turn after %s" % L.format_duration(lock.waited_ms) if lock.waited_ms >= 1 else None)
    ticket = lock.entry.name[: -len(".json")]
    completed = False
    try:
        if log:
            stamp(log, "S", ticket)
        if hold_until:
            while not os.path.exists(hold_until):
                time.sleep(0.02)
        code = 0
        if command:
            env = dict(os.environ, SEQ_TEST_TOKEN=lock.chain, SEQ_TEST_TICKET=ticket)
            code = subprocess.call(command, env=env)
        if log:
            stamp(log, "E", ticket)
        # As `seq-test run`: a command that ended on its own (not by a signal) records its memory peak in
        # "slots": "auto" mode.
        completed = code >= 0
        return code
    finally:
        lock.release(completed=completed)


_announced = set()


def announce(ticket):
    if ticket in _announced:
        return
    _announced.add(ticket)
    sys.stdout.write("TICKET %s\n" % ticket)
    sys.stdout.flush()


def stamp(log, kind, ticket):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, ("%s %s %d\n" % (kind, ticket, time.time_ns())).encode())
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
