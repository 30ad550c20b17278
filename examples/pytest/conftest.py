"""The project's own conftest: a fixture the tests share. `seq-test init --pytest` added the last line."""

import os

import pytest


@pytest.fixture
def workdir(tmp_path):
    """A scratch directory the tests run their commands in."""
    old = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)

pytest_plugins = ["seq_test_plugin"]  # seq-test: sequential runs, the project's lock, leftovers reaped
