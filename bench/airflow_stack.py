"""Start-up time and memory of the embedded stack's Airflow: `airflow standalone` against the
stack's supervisor running the same four components (scheduler, dag-processor, triggerer,
api-server) as processes of its own.

For each mode, on a fresh metadata database in the stack's Postgres: seconds from the start until
Airflow's monitor endpoint calls every component healthy, then the process tree's PSS once settled.
Uses the OMS_* settings of the environment (run it on ports of your own, e.g. a worktree's).

    .venv/bin/python bench/airflow_stack.py [--settle 20] [--modes standalone,supervised]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import httpx

from oms.settings import Settings
from omsdev.stack import control, postgres, processes


def all_healthy(url: str) -> bool:
    try:
        body = httpx.get(f"{url}/api/v2/monitor/health", timeout=3).json()
    except (httpx.HTTPError, ValueError):
        return False
    return all((body.get(k) or {}).get("status") == "healthy"
               for k in ("metadatabase", "scheduler", "triggerer", "dag_processor"))


def tree(root: int) -> list[int]:
    """The process and its descendants (task processes a run started count too: both modes run the
    same DAGs on the same empty warehouse)."""
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        try:
            stack.extend(int(p) for task in Path(f"/proc/{pid}/task").iterdir()
                         for p in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def measure(settings: Settings, standalone: bool, settle: float, timeout: float) -> dict:
    admin = settings.dsn("postgres")
    postgres.drop_database(admin, settings.airflow_db)
    postgres.ensure_database(admin, settings.airflow_db)
    service = control.airflow_service(settings, standalone=standalone)
    started = time.monotonic()
    pid, _ = processes.start(settings.state_dir, service)
    try:
        while not all_healthy(settings.airflow_url):
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"not healthy within {timeout:.0f}s (see {processes.log_path(settings.state_dir, 'airflow')})")
            time.sleep(0.5)
        seconds = time.monotonic() - started
        load_at_healthy = os.getloadavg()[0]
        time.sleep(settle)
        return {"mode": "standalone" if standalone else "supervised", "healthy_after_s": round(seconds, 1),
                "pss_mib": round(processes.tree_pss_mib(pid)), "processes": len(tree(pid)),
                "load_at_healthy": round(load_at_healthy, 1), "load_settled": round(os.getloadavg()[0], 1)}
    finally:
        processes.stop(settings.state_dir, "airflow")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settle", type=float, default=20.0, help="Seconds after healthy before measuring memory.")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--modes", default="standalone,supervised",
                        help="Measured in this order; repeat a mode to alternate them (the load drifts).")
    args = parser.parse_args()
    settings = Settings()
    control.ensure_postgres(settings)
    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores)")
    for mode in args.modes.split(","):
        print(measure(settings, mode == "standalone", args.settle, args.timeout), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
