"""Tests that call other programs, the way real test suites do."""

import subprocess
import sys
import time

import pytest

import seq_subprocess


def test_python_subprocess(workdir):
    result = subprocess.run(
        [sys.executable, "-c", "import sys; print(sys.argv[1].upper())", "hello"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "HELLO\n"


def test_shell_pipeline(workdir):
    (workdir / "data.txt").write_text("b\na\nc\na\n")
    out = subprocess.check_output("sort data.txt | uniq -c | sort -rn | head -1", shell=True, text=True)
    assert out.split() == ["2", "a"]


def test_background_job_is_waited_for(workdir):
    # With seq_test_patch_subprocess = true, subprocess.run returns only once the command's whole tree has
    # ended, so the file the background job writes is there when run() returns.
    subprocess.run("(sleep 0.3; echo done > marker) &", shell=True, check=True)
    assert (workdir / "marker").read_text() == "done\n"


def test_timeout_ends_the_whole_tree(workdir):
    began = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        seq_subprocess.run(["sh", "-c", "sleep 60 & sleep 60"], timeout=0.5)
    assert time.monotonic() - began < 30


def test_some_work():
    # Stands in for a slow test: two concurrent runs of this suite would overlap here without the lock.
    time.sleep(1)
