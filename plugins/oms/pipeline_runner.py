"""Running the pipeline's DAGs now through Airflow's REST API and waiting for them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from oms.stack.airflow_config import AirflowApi

TERMINAL = {"success", "failed"}


@dataclass
class RunReport:
    dag_id: str
    run_id: str
    state: str
    data_interval_start: str | None
    data_interval_end: str | None
    seconds: float
    tasks: dict[str, str]
    result: Any


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def wait_for_run(api: AirflowApi, dag_id: str, run_id: str, timeout: float,
                 on_tick: Callable[[str, str], None] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = api.dag_run(dag_id, run_id)
        if on_tick:
            on_tick(dag_id, run["state"])
        if run["state"] in TERMINAL:
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dag_id} run {run_id} still {run['state']} after {timeout:.0f}s")
        time.sleep(1)


def _report(api: AirflowApi, dag_id: str, run: dict[str, Any], started: float, result_task: str) -> RunReport:
    tasks = {t["task_id"]: t["state"] for t in api.task_instances(dag_id, run["dag_run_id"])}
    return RunReport(dag_id, run["dag_run_id"], run["state"], run.get("data_interval_start"),
                     run.get("data_interval_end"), time.monotonic() - started, tasks,
                     api.xcom(dag_id, run["dag_run_id"], result_task))


def run_stock_pipeline(api: AirflowApi, start: datetime, end: datetime, timeout: float = 600,
                       on_tick: Callable[[str, str], None] | None = None) -> list[RunReport]:
    """Trigger erp_stock_ingest for [start, end), then wait for the atp_build run its asset event starts."""
    reports = []
    began = time.monotonic()
    triggered_at = datetime.now(UTC)
    run = api.trigger("erp_stock_ingest", logical_date=_iso(end), data_interval_start=_iso(start),
                      data_interval_end=_iso(end))
    run = wait_for_run(api, "erp_stock_ingest", run["dag_run_id"], timeout, on_tick)
    reports.append(_report(api, "erp_stock_ingest", run, began, "validate"))
    if run["state"] != "success":
        return reports
    began = time.monotonic()
    deadline = began + timeout
    atp_run = None
    while atp_run is None:  # the asset event schedules it; find the run queued after our trigger
        for candidate in api.dag_runs("atp_build"):
            queued = datetime.fromisoformat(candidate["run_after"].replace("Z", "+00:00"))
            if queued >= triggered_at and candidate.get("run_type") == "asset_triggered":
                atp_run = candidate
                break
        if atp_run is None:
            if time.monotonic() > deadline:
                raise TimeoutError("atp_build was not scheduled by the raw.erp_stock asset event")
            if on_tick:
                on_tick("atp_build", "waiting for asset event")
            time.sleep(1)
    run = wait_for_run(api, "atp_build", atp_run["dag_run_id"], timeout, on_tick)
    reports.append(_report(api, "atp_build", run, began, "dbt_build_atp"))
    return reports
