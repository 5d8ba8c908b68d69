"""Airflow's components as supervised processes: one that exits is started again.

`airflow standalone` starts the scheduler, dag-processor, triggerer and api-server once and never
again: when the metadata database went away (a Postgres restart), the three job components exited
on "connection refused" and stayed down while the api-server answered, so nothing ran any more.
This supervisor runs the same four commands itself and restarts each one that exits, with a
backoff (1 s doubling to OMS_SUPERVISOR_MAX_BACKOFF, 15 s by default, reset after a minute of
uptime) so a component that cannot start yet (the database is still down) does not spin.

A component killed outright leaves its own children behind: a scheduler's LocalExecutor workers
(and the tasks they run), its and the triggerer's `serve-logs`. Left alone they would keep running
tasks whose results no scheduler reads (the task instance stays "running" until Airflow calls it a
zombie) and keep the log server's port from the component started in its place. Run as a process
(`main`), the supervisor is the child subreaper of everything below it: such orphans become its
children, and it kills them (with what they started) and reaps them, in the seconds after a
component exited. An orphan at any other time is a helper a task left to finish by itself (the
multiprocessing resource tracker of a dbt build, which unlinks its semaphores once the task is
gone): it is left to exit and then reaped, not killed. The scheduler started again then resets
the task instances the dead one had queued or was running (Airflow's orphaned-task check, every
minute in the stack's configuration), and they run again.

It writes what it runs to `run/airflow-components.json` in the state folder (pid, start time,
restarts, last exit) for `oms status` and `oms up`. `oms up` restarts a component that is alive
but unhealthy by Airflow's monitor endpoint with SIGTERM to that component's pid (the supervisor
starts it again at once), and with SIGUSR1 to the supervisor makes every component waiting out a
backoff start now.

Run as `python -m omsdev.stack.supervisor STATE_DIR [AIRFLOW_BIN]` with Airflow's environment (the
stack's `airflow` service does that; AIRFLOW_BIN defaults to the `airflow` beside this Python);
SIGTERM stops every component and then the supervisor.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
STATE_FILE = "airflow-components.json"
STABLE_AFTER = 60.0  # seconds of uptime after which a component's backoff starts again from 1 s
STOP_GRACE = 15.0
# After a component exits, the orphans that come to the supervisor within this many seconds are what
# it left behind (its children at once, their children once those are killed) and are killed.
SWEEP_AFTER_EXIT = 10.0
TRACKER_GRACE = 5.0  # seconds `oms down` waits for resource trackers to unlink their semaphores and exit
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


@dataclass
class Component:
    name: str
    pid: int | None = None
    started_at: str | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    last_exit_at: str | None = None
    next_start_at: float = 0.0       # monotonic; 0 = start now
    backoff: float = 1.0
    process: subprocess.Popen | None = field(default=None, repr=False)
    started_mono: float = 0.0


def state_path(state_dir: Path) -> Path:
    return Path(state_dir) / "run" / STATE_FILE


def read_state(state_dir: Path) -> dict:
    """The supervisor's last written view: {"supervisor_pid": …, "components": {name: {...}}}."""
    try:
        return json.loads(state_path(state_dir).read_text())
    except (OSError, ValueError):
        return {}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process instead of init (Linux)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(p) for p in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        for child in _children(stack.pop()):
            found.append(child)
            stack.append(child)
    return found


def _is_resource_tracker(pid: int) -> bool:
    """Python's multiprocessing resource tracker: it unlinks the named semaphores (/dev/shm/sem.mp-*)
    its processes registered once the last of them is gone; killed, it leaves them in /dev/shm."""
    try:
        return b"multiprocessing.resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _command(pid: int) -> str:
    try:
        command = " ".join(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")).strip()
    except OSError:
        command = ""
    return command[:80] or "exited"  # a zombie has no command line


class Supervisor:
    def __init__(self, state_dir: Path, airflow_bin: str, max_backoff: float, poll_seconds: float = 0.5):
        self.state_dir = Path(state_dir)
        self.poll_seconds = poll_seconds   # between two looks at the components
        self.airflow_bin = airflow_bin
        self.max_backoff = max_backoff
        self.components = {name: Component(name) for name in COMPONENTS}
        self.stopping = False
        self.wake = False
        self.reaps_orphans = False  # set when this process is the subreaper of its descendants (main)
        self.sweep_until = 0.0      # monotonic; orphans before then are a dead component's and are killed
        self.adopted: set[int] = set()  # orphans left to exit by themselves, logged once

    def log(self, message: str) -> None:
        print(f"{_now()} supervisor: {message}", flush=True)

    def write_state(self) -> None:
        path = state_path(self.state_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"supervisor_pid": os.getpid(), "written_at": _now(), "components": {
            c.name: {"pid": c.pid, "started_at": c.started_at, "restarts": c.restarts,
                     "last_exit_code": c.last_exit_code, "last_exit_at": c.last_exit_at}
            for c in self.components.values()}}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=1))
        tmp.replace(path)

    def migrate(self) -> None:
        """`airflow db migrate` until it succeeds (what standalone does first), with the same backoff."""
        delay = 1.0
        while not self.stopping:
            result = subprocess.run([self.airflow_bin, "db", "migrate"], stdin=subprocess.DEVNULL)
            if result.returncode == 0:
                return
            self.log(f"db migrate exited {result.returncode}; again in {delay:.0f}s")
            self._sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    def start(self, component: Component) -> None:
        # Same process group as the supervisor: stopping the `airflow` service's group stops
        # every component and the task processes they forked, even after a component was killed.
        component.process = subprocess.Popen([self.airflow_bin, component.name], stdin=subprocess.DEVNULL)
        if component.started_at is not None:
            component.restarts += 1
        component.pid = component.process.pid
        component.started_at = _now()
        component.started_mono = time.monotonic()
        self.log(f"{component.name} started (pid {component.pid}, restarts {component.restarts})")

    def reap(self, component: Component) -> bool:
        """True when the component's process has exited (and schedules its restart)."""
        if component.process is None:
            return False
        code = component.process.poll()
        if code is None:
            return False
        uptime = time.monotonic() - component.started_mono
        if uptime > STABLE_AFTER:
            component.backoff = 1.0
        component.last_exit_code, component.last_exit_at = code, _now()
        component.process, component.pid = None, None
        # Stopped on request (SIGTERM from `oms up`): start again at once.
        delay = 0.0 if code in (-signal.SIGTERM, 128 + signal.SIGTERM) else component.backoff
        component.next_start_at = time.monotonic() + delay
        component.backoff = min(component.backoff * 2, self.max_backoff)
        self.log(f"{component.name} exited with {code} after {uptime:.0f}s; restart in {delay:.0f}s")
        return True

    def kill_orphans(self) -> int:
        """Kill and reap the children that are not components: with the subreaper set they are what a
        component that died left behind (its executor workers, their tasks, its log server). A
        multiprocessing resource tracker among them (a dbt build's) is spared: once the task it
        served is killed it unlinks the build's semaphores and exits, and is reaped then
        (reap_orphans)."""
        own = {c.pid for c in self.components.values() if c.pid}
        orphans = [pid for pid in _children(os.getpid()) if pid not in own and not _is_resource_tracker(pid)]
        names = [_command(pid) for pid in orphans]
        for orphan in orphans:
            for pid in [*_descendants(orphan), orphan]:
                if _is_resource_tracker(pid):
                    continue
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5  # SIGKILL'd: gone at once unless stuck in the kernel
        for orphan in orphans:
            while True:
                try:
                    if os.waitpid(orphan, os.WNOHANG)[0] or time.monotonic() > deadline:
                        break
                except ChildProcessError:
                    break
                time.sleep(0.05)
        if orphans:
            self.log(f"killed {len(orphans)} process(es) left behind by a component that exited: "
                     f"{', '.join(f'{pid} ({name})' for pid, name in zip(orphans, names, strict=True))}")
        return len(orphans)

    def reap_orphans(self, sweeping: bool = False) -> int:
        """Collect the exit status of orphans that exited by themselves (else they stay zombies).
        `sweeping`: after kill_orphans, whose next pass kills what is still alive but a resource
        tracker, so only those are logged as left to exit."""
        own = {c.pid for c in self.components.values() if c.pid}
        reaped = 0
        for pid in _children(os.getpid()):
            if pid in own:
                continue
            if pid not in self.adopted and (not sweeping or _is_resource_tracker(pid)):
                self.adopted.add(pid)
                self.log(f"left to exit by itself: {pid} ({_command(pid)})")
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    reaped += 1
                    self.adopted.discard(pid)
            except ChildProcessError:
                self.adopted.discard(pid)
        return reaped

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and not self.wake and time.monotonic() < deadline:
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))

    def run(self) -> None:
        self.write_state()
        self.migrate()
        while not self.stopping:
            changed = False
            if self.wake:
                self.wake = False
                for component in self.components.values():
                    component.next_start_at = 0.0
            exited = False
            for component in self.components.values():
                exited |= self.reap(component)
            changed |= exited
            if self.reaps_orphans:
                if exited:
                    self.sweep_until = time.monotonic() + SWEEP_AFTER_EXIT
                if time.monotonic() < self.sweep_until:
                    # The orphans' grandchildren come to us once their parent is killed: the next pass takes them.
                    self.kill_orphans()
                    self.reap_orphans(sweeping=True)  # the killed, and resource trackers done unlinking
                else:
                    self.reap_orphans()
            for component in self.components.values():
                if component.process is None and time.monotonic() >= component.next_start_at and not self.stopping:
                    self.start(component)
                    changed = True
            if changed:
                self.write_state()
            self._sleep(self.poll_seconds)

    def serve(self) -> None:
        try:
            self.run()
        finally:  # a supervisor that fails must not leave its components running unsupervised
            self.shutdown()

    def shutdown(self) -> None:
        running = [c for c in self.components.values() if c.process is not None]
        for component in running:
            component.process.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for component in running:
            try:
                component.process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                component.process.kill()
        for component in self.components.values():
            component.process, component.pid = None, None
        if self.reaps_orphans:
            self.kill_orphans()
            # the resource trackers spared above exit once the tasks they served are gone (and
            # unlink those tasks' semaphores): a few seconds, not a reason to hold `oms down` up
            deadline = time.monotonic() + TRACKER_GRACE
            while _children(os.getpid()) and time.monotonic() < deadline:
                self.reap_orphans(sweeping=True)
                time.sleep(0.1)
        self.write_state()
        self.log("stopped")


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    state_dir = Path(args[0])
    airflow_bin = args[1] if len(args) > 1 else str(Path(sys.executable).parent / "airflow")
    supervisor = Supervisor(state_dir, airflow_bin, float(os.environ.get("OMS_SUPERVISOR_MAX_BACKOFF", "15")))
    supervisor.reaps_orphans = become_subreaper()

    def stop(signum, frame) -> None:
        supervisor.stopping = True

    def wake(signum, frame) -> None:
        supervisor.wake = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, wake)
    supervisor.serve()


if __name__ == "__main__":
    main()
