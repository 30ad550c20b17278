"""A test that leaves a process behind on purpose: seq-test ends it at the end of the session and names it."""

import subprocess


def test_starts_a_server_and_forgets_it():
    # start_new_session: it is not even in pytest's process group, so a Ctrl-C in the terminal would miss it.
    subprocess.Popen(["sleep", "300"], start_new_session=True)
