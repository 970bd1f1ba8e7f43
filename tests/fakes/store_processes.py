"""Helper processes of the store's fault tests and benchmark: a lock holder, writers, a save loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS.parent

LOCK_HOLDER = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("ROLLBACK")
""")
# Waits for the go file, then opens the store (fresh or not) and saves N runs, one line each.
WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from fakes.synthetic import make_run
    from perfgate.store import Store
    db, worker, count, go = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    with Store(db) as store:
        for i in range(count):
            store.save(make_run(commit=f"{worker:x}{i:039x}", seed=i))
            print("saved", flush=True)
""")

SAVE_LOOP = textwrap.dedent("""
    import sys
    from pathlib import Path
    from fakes.synthetic import make_run
    from perfgate.store import Store
    with Store(Path(sys.argv[1])) as store:
        for i in range(100000):
            run = make_run(commit=f"{i:040x}", seed=i)
            k = i % 6 + 1
            endpoints = [e.model_copy(update={"stats": e.stats.model_copy(update={"name": f"/e{j}"})})
                         for j in range(k) for e in run.endpoints[:1]]
            store.save(run.model_copy(update={"endpoints": endpoints,
                                              "profile": run.profile.model_copy(update={"name": f"k{k}"})}))
            print("saved", flush=True)
""")


SAVE_ONE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from fakes.synthetic import make_run
    from perfgate.errors import RunNotStoredError
    from perfgate.measure.record import store_run
    from perfgate.store import Store
    with Store(Path(sys.argv[1])) as store:
        try:
            store_run(store, make_run(seed=7))
        except RunNotStoredError as exc:
            print(exc.spill_path)
            print(exc, file=sys.stderr)
            sys.exit(int(exc.exit_code))
""")


def python_process(code: str, *args: str, **popen: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO_ROOT)])}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **popen)  # type: ignore[call-overload]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
