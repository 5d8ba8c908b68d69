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


def wait_for_asset_run(api: AirflowApi, dag_id: str, queued_after: datetime, timeout: float,
                       on_tick: Callable[[str, str], None] | None = None) -> dict[str, Any]:
    """Find the run an asset event queued for `dag_id` after `queued_after`, and wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        for candidate in api.dag_runs(dag_id):
            queued = datetime.fromisoformat(candidate["run_after"].replace("Z", "+00:00"))
            if queued >= queued_after and candidate.get("run_type") == "asset_triggered":
                return wait_for_run(api, dag_id, candidate["dag_run_id"], timeout, on_tick)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dag_id} was not scheduled by its asset event within {timeout:.0f}s")
        if on_tick:
            on_tick(dag_id, "waiting for asset event")
        time.sleep(1)


# DAGs scheduled, one after the other, by the asset events of the ingestion.
ASSET_CHAIN = (("atp_build", "dbt_build_atp"), ("magento_stock_publish", "publish_source_items"))


def run_stock_pipeline(api: AirflowApi, start: datetime, end: datetime, timeout: float = 600,
                       on_tick: Callable[[str, str], None] | None = None) -> list[RunReport]:
    """Trigger erp_stock_ingest for [start, end), then follow the runs its asset events schedule."""
    reports = []
    began = time.monotonic()
    triggered_at = datetime.now(UTC)
    run = api.trigger("erp_stock_ingest", logical_date=_iso(end), data_interval_start=_iso(start),
                      data_interval_end=_iso(end))
    run = wait_for_run(api, "erp_stock_ingest", run["dag_run_id"], timeout, on_tick)
    reports.append(_report(api, "erp_stock_ingest", run, began, "validate"))
    for dag_id, result_task in ASSET_CHAIN:
        if run["state"] != "success":
            break
        began = time.monotonic()
        run = wait_for_asset_run(api, dag_id, triggered_at, timeout, on_tick)
        reports.append(_report(api, dag_id, run, began, result_task))
    return reports
