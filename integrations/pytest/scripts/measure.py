"""Measures the pytest bridge (numbers quoted in the README). Not a test: nothing here asserts.

usage: python3 integrations/pytest/scripts/measure.py [--quick]

Prints medians on this machine for:
  lock      uncontended acquire + release (seq_test_lock)
  run       seq_subprocess.run(["true"]) vs subprocess.run(["true"]), outside a run and inside one
  detect    a SIGKILLed Python holder (another process) until a Python waiter holds
  handoff   20 queued Python contenders holding 50 ms each: gap between one's end and the next one's start
  plugin    a 300-test suite with and without the plugin (-p no:seq_test_plugin)
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(os.path.dirname(HERE), "templates")
sys.path.insert(0, TEMPLATES)

import seq_subprocess  # noqa: E402
import seq_test_lock as L  # noqa: E402

QUICK = "--quick" in sys.argv


def ms(seconds):
    return "%.1f ms" % (seconds * 1000)


def median_of(fn, n):
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


HOLDER = """
import sys, time
sys.path.insert(0, %r)
import seq_test_lock as L
lock = L.acquire("holder", key=sys.argv[1])
print("held", flush=True)
time.sleep(300)
"""

CONTENDER = """
import os, sys, time
sys.path.insert(0, %r)
import seq_test_lock as L
lock = L.acquire("contender", key=sys.argv[1])
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, ("S %%d\\n" %% time.time_ns()).encode())
time.sleep(0.05)
os.write(fd, ("E %%d\\n" %% time.time_ns()).encode())
lock.release()
"""


def main():
    state = tempfile.mkdtemp(prefix="seq-test-measure-")
    os.environ["SEQ_TEST_STATE_DIR"] = os.path.join(state, "state")
    os.environ.pop("SEQ_TEST_TOKEN", None)
    n = 10 if QUICK else 50
    try:
        print("python %s on %s, %d cpus" % (sys.version.split()[0], sys.platform, os.cpu_count()))

        def lock_once():
            L.acquire("m", key="measure-lock").release()

        print("lock     uncontended acquire+release: %s" % ms(median_of(lock_once, n)))

        plain = median_of(lambda: subprocess.run(["true"]), n)
        ours = median_of(lambda: seq_subprocess.run(["true"]), n)
        outer = L.acquire("outer", key="measure-run")
        os.environ["SEQ_TEST_TOKEN"] = outer.chain
        os.environ["SEQ_TEST_KEY"] = "measure-run"
        nested = median_of(lambda: seq_subprocess.run(["true"]), n)
        del os.environ["SEQ_TEST_TOKEN"]
        del os.environ["SEQ_TEST_KEY"]
        outer.release()
        print(
            "run      subprocess.run(true) %s; seq_subprocess.run(true) %s outside a run, %s inside one (nested queue)"
            % (ms(plain), ms(ours), ms(nested))
        )

        detections = []
        for i in range(3 if QUICK else 7):
            key = "measure-detect-%d" % i
            holder = subprocess.Popen(
                [sys.executable, "-c", HOLDER % TEMPLATES, key], stdout=subprocess.PIPE, universal_newlines=True
            )
            holder.stdout.readline()
            killed = {}

            def kill_soon():
                time.sleep(0.3)
                killed["at"] = time.perf_counter()
                holder.send_signal(signal.SIGKILL)

            import threading

            t = threading.Thread(target=kill_soon)
            t.start()
            lock = L.acquire("waiter", key=key)
            detections.append(time.perf_counter() - killed["at"])
            lock.release()
            t.join()
            holder.wait()
        print("detect   SIGKILLed holder -> waiter holds: median %s (of %d)" % (ms(statistics.median(detections)), len(detections)))

        log = os.path.join(state, "handoff.log")
        blocker = L.acquire("blocker", key="measure-handoff")
        procs = []
        count = 5 if QUICK else 20
        for _ in range(count):
            procs.append(subprocess.Popen([sys.executable, "-c", CONTENDER % TEMPLATES, "measure-handoff", log]))
        queue_dir = os.path.join(os.environ["SEQ_TEST_STATE_DIR"], L.key_dir_name("measure-handoff"), "tickets")
        deadline = time.monotonic() + 120
        while len(os.listdir(queue_dir)) < count + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        blocker.release()
        for p in procs:
            p.wait()
        with open(log) as f:
            events = [line.split() for line in f]
        gaps = [
            (int(events[i + 1][1]) - int(events[i][1])) / 1e9
            for i in range(1, len(events) - 1, 2)
            if events[i][0] == "E" and events[i + 1][0] == "S"
        ]
        print("handoff  %d queued contenders: mean gap %s, median %s" % (count, ms(statistics.mean(gaps)), ms(statistics.median(gaps))))

        project = os.path.join(state, "suite")
        os.makedirs(project)
        for module in ("seq_test_lock.py", "seq_subprocess.py", "seq_test_plugin.py"):
            shutil.copy(os.path.join(TEMPLATES, module), project)
        with open(os.path.join(project, "conftest.py"), "w") as f:
            f.write('pytest_plugins = ["seq_test_plugin"]\n')
        with open(os.path.join(project, "pytest.ini"), "w") as f:
            f.write("[pytest]\n")
        with open(os.path.join(project, "test_many.py"), "w") as f:
            f.write("import pytest\n\n@pytest.mark.parametrize('i', range(300))\ndef test_n(i):\n    assert i >= 0\n")
        # Byte-code caching on (the usual setting; PYTHONDONTWRITEBYTECODE=1 adds compile time to both).
        env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        import resource

        walls = {"with": [], "without": []}
        cpus = {"with": [], "without": []}
        for round_ in range(4 if QUICK else 11):
            for args, name in (([], "with"), (["-p", "no:seq_test_plugin"], "without")):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                began = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"] + args,
                    cwd=project,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    check=True,
                )
                wall = time.perf_counter() - began
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if round_ == 0:
                    continue  # warm-up: writes the byte-code caches
                walls[name].append(wall)
                cpus[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        for label, data in (("wall", walls), ("cpu", cpus)):
            a, b = statistics.median(data["with"]), statistics.median(data["without"])
            print("plugin   300 tests, %s: with %s, without %s: ratio %.3f" % (label, ms(a), ms(b), a / b))
    finally:
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
