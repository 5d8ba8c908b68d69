"""The local stack's supervisor (omsdev.stack.supervisor): it migrates first, starts the four
Airflow components, starts again one that exits (killed or crashed), starts at once one stopped on
request (SIGTERM, what `oms up` sends to an unhealthy one), and stops them all when it stops.
Real processes: a stand-in `airflow` executable that records its calls and sleeps (or exits, for
the migration). The stack with the real Airflow is tests/test_chaos.py."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from omsdev.stack import supervisor

FAKE_AIRFLOW = """#!/bin/sh
echo "$@" >> "{calls}"
if [ "$1" = db ]; then exit 0; fi
exec sleep 300
"""


def wait(condition, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return found


def alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def running(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "airflow"
    fake.write_text(FAKE_AIRFLOW.format(calls=calls))
    fake.chmod(0o755)
    sup = supervisor.Supervisor(tmp_path / "state", str(fake), max_backoff=2, poll_seconds=0.05)
    thread = threading.Thread(target=sup.serve, daemon=True)
    thread.start()
    yield sup, calls, tmp_path / "state"
    sup.stopping = True
    thread.join(30)


def components(state_dir: Path) -> dict:
    return supervisor.read_state(state_dir).get("components", {})


def test_migrates_then_starts_every_component_and_restarts_one_that_dies(running):
    sup, calls, state_dir = running
    first = wait(lambda: all(c["pid"] for c in components(state_dir).values()) and components(state_dir))
    assert set(first) == set(supervisor.COMPONENTS)
    lines = calls.read_text().splitlines()
    assert lines[0] == "db migrate" and set(lines[1:]) == set(supervisor.COMPONENTS)

    os.kill(first["scheduler"]["pid"], signal.SIGKILL)  # as the OOM killer, or a crash
    again = wait(lambda: components(state_dir)["scheduler"]["pid"] not in (None, first["scheduler"]["pid"])
                 and components(state_dir))
    assert again["scheduler"]["restarts"] == 1 and again["scheduler"]["last_exit_code"] == -signal.SIGKILL
    assert alive(again["scheduler"]["pid"])
    assert again["triggerer"]["pid"] == first["triggerer"]["pid"]  # the others untouched

    os.kill(again["triggerer"]["pid"], signal.SIGTERM)  # `oms up` restarting an unhealthy one
    third = wait(lambda: components(state_dir)["triggerer"]["restarts"] == 1 and components(state_dir)["triggerer"]["pid"]
                 and components(state_dir), timeout=5)
    assert third["triggerer"]["last_exit_code"] == -signal.SIGTERM


def test_stopping_stops_every_component(running):
    sup, _, state_dir = running
    pids = [c["pid"] for c in wait(lambda: all(c["pid"] for c in components(state_dir).values())
                                   and components(state_dir)).values()]
    sup.stopping = True
    wait(lambda: not any(alive(pid) for pid in pids), timeout=30)
    wait(lambda: all(c["pid"] is None for c in components(state_dir).values()))


FAKE_AIRFLOW_WITH_HELPER = """#!/bin/sh
if [ "$1" = db ]; then exit 0; fi
# a helper of the component's own, as the scheduler's executor workers and log server are
sleep 300 &
echo "$1 $!" >> "{helpers}"
exec sleep 300
"""


def test_what_a_killed_component_left_behind_is_killed(tmp_path):
    """Run as a process (the subreaper of what it starts): a component killed outright leaves its
    helpers orphaned, and the supervisor kills them before the new one starts its own."""
    import subprocess
    import sys

    helpers = tmp_path / "helpers"
    fake = tmp_path / "airflow"
    fake.write_text(FAKE_AIRFLOW_WITH_HELPER.format(helpers=helpers))
    fake.chmod(0o755)
    state_dir = tmp_path / "state"
    process = subprocess.Popen([sys.executable, "-m", "omsdev.stack.supervisor", str(state_dir), str(fake)])

    def helper_pids() -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for line in helpers.read_text().splitlines() if helpers.exists() else []:
            name, pid = line.split()
            found.setdefault(name, []).append(int(pid))
        return found

    try:
        first = wait(lambda: len(helper_pids()) == len(supervisor.COMPONENTS) and all(
            c["pid"] for c in components(state_dir).values()) and components(state_dir))
        orphan = helper_pids()["scheduler"][0]
        os.kill(first["scheduler"]["pid"], signal.SIGKILL)
        wait(lambda: not alive(orphan))
        wait(lambda: len(helper_pids()["scheduler"]) == 2)  # the scheduler started again, with a helper of its own
        assert alive(helper_pids()["scheduler"][1])
        assert all(alive(pids[0]) for name, pids in helper_pids().items() if name != "scheduler")  # others untouched
    finally:
        process.terminate()
        process.wait(30)
        for pids in helper_pids().values():
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


FAKE_AIRFLOW_WITH_LINGERING_HELPER = """#!/bin/sh
if [ "$1" = db ]; then exit 0; fi
if [ "$1" = scheduler ]; then
    # a task that exits and leaves a helper to finish by itself (as dbt's multiprocessing resource
    # tracker does): the helper is orphaned while every component runs
    sh -c 'sh -c "until [ -e {release} ]; do sleep 0.1; done" & echo $! > {helper}'
fi
exec sleep 300
"""


def test_a_helper_left_by_a_finished_task_is_left_to_exit_and_then_reaped(tmp_path):
    """An orphan that comes to the supervisor while no component exited is not a dead component's
    leftover: it is not killed, and once it exits by itself it is reaped (no zombie)."""
    import subprocess
    import sys

    helper, release = tmp_path / "helper", tmp_path / "release"
    fake = tmp_path / "airflow"
    fake.write_text(FAKE_AIRFLOW_WITH_LINGERING_HELPER.format(helper=helper, release=release))
    fake.chmod(0o755)
    state_dir = tmp_path / "state"
    log = tmp_path / "supervisor.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "omsdev.stack.supervisor", str(state_dir), str(fake)],
                                   stdout=out)
    try:
        pid = wait(lambda: helper.exists() and helper.read_text().strip() and int(helper.read_text()))
        wait(lambda: f"left to exit by itself: {pid} " in log.read_text())  # adopted, not killed
        assert alive(pid)
        release.touch()
        wait(lambda: not Path(f"/proc/{pid}").exists())  # exited by itself and reaped: not even a zombie
        assert "killed" not in log.read_text()
        assert all(c["restarts"] == 0 for c in components(state_dir).values())
    finally:
        process.terminate()
        process.wait(30)
        release.touch()


SEMAPHORE_HOLDER = """import multiprocessing, sys, time
lock = multiprocessing.get_context("spawn").Lock()  # a named semaphore, as dbt's manifest and adapters make
open(sys.argv[1], "w").write(lock._semlock.name)
time.sleep(300)
"""
FAKE_AIRFLOW_WITH_SEMAPHORE = """#!/bin/sh
if [ "$1" = db ]; then exit 0; fi
if [ "$1" = scheduler ] && [ ! -e {name} ]; then
    "{python}" "{holder}" "{name}" &
fi
exec sleep 300
"""


def test_a_killed_component_leaves_no_semaphore_behind(tmp_path):
    """A task (a dbt build) registers its named semaphores with multiprocessing's resource tracker,
    which unlinks them once the task is gone. When the task's scheduler is killed outright, the
    supervisor kills what it left behind but not the tracker: the semaphore leaves /dev/shm."""
    import subprocess
    import sys

    name, holder = tmp_path / "semaphore", tmp_path / "holder.py"
    holder.write_text(SEMAPHORE_HOLDER)
    fake = tmp_path / "airflow"
    fake.write_text(FAKE_AIRFLOW_WITH_SEMAPHORE.format(name=name, python=sys.executable, holder=holder))
    fake.chmod(0o755)
    state_dir = tmp_path / "state"
    process = subprocess.Popen([sys.executable, "-m", "omsdev.stack.supervisor", str(state_dir), str(fake)],
                               stdout=subprocess.DEVNULL)
    try:
        semaphore = Path("/dev/shm") / ("sem." + wait(lambda: name.exists() and name.read_text()).lstrip("/"))
        assert semaphore.exists()
        scheduler = wait(lambda: components(state_dir)["scheduler"]["pid"])
        os.kill(scheduler, signal.SIGKILL)
        wait(lambda: components(state_dir)["scheduler"]["restarts"] == 1)
        wait(lambda: not semaphore.exists())
    finally:
        process.terminate()
        process.wait(30)
