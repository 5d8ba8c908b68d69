"""Background processes of the embedded stack: started detached, tracked by pid files, logged to files."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    env: dict[str, str]
    health_url: str | None
    port: int | None


def run_dir(state_dir: Path) -> Path:
    path = state_dir / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_path(state_dir: Path, name: str) -> Path:
    path = state_dir / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{name}.log"


def read_pid(state_dir: Path, name: str) -> int | None:
    pid_file = run_dir(state_dir) / f"{name}.pid"
    if not pid_file.exists():
        return None
    try:
        pid = int(pid_file.read_text().strip())
        _reap(pid)  # one we started and that exited is a zombie until reaped: it would still answer kill(0)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError):
        pid_file.unlink(missing_ok=True)
        return None
    return pid


def start(state_dir: Path, service: Service) -> tuple[int, bool]:
    """Start the service unless it already runs; returns (pid, started_now)."""
    pid = read_pid(state_dir, service.name)
    if pid:
        return pid, False
    with open(log_path(state_dir, service.name), "ab") as log:
        process = subprocess.Popen(
            service.command,
            env={**os.environ, **service.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it stops its children
        )
    (run_dir(state_dir) / f"{service.name}.pid").write_text(str(process.pid))
    return process.pid, True


def stop(state_dir: Path, name: str, timeout: float = 20.0) -> bool:
    pid = read_pid(state_dir, name)
    if not pid:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    (run_dir(state_dir) / f"{name}.pid").unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when we started the process ourselves (the tests do): until then
    it stays a zombie, its process group still answers, and stop() would wait out its timeout."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_healthy(url: str, timeout: float, alive: Callable[[], bool] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        if alive is not None and not alive():
            return False
        time.sleep(0.5)
    return False


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_pss_mib(root_pid: int) -> float:
    """Proportional set size of a process and all its descendants, in MiB."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += _pss_kib(pid)
        stack.extend(children.get(pid, []))
    return total / 1024
