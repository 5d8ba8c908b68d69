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


INGEST_DAGS = {"erp_stock_ingest": "validate", "magento_orders_ingest": "validate"}  # dag id -> result task
BUILD_DAG = ("atp_build", "dbt_build_atp")


def _await_consumers(api: AirflowApi, dag_id: str, producers: set[tuple[str, str]], triggered_at: datetime,
                     timeout: float, on_tick: Callable[[str, str], None] | None) -> list[dict[str, Any]]:
    """The asset-triggered runs of dag_id that consumed the events of the producer runs (dag id,
    run id). Events of two producers may be consumed by one run or by two, whichever the
    scheduler saw first; each run's consumed events are fixed when it is created."""
    deadline = time.monotonic() + timeout
    pending, consumers, inspected = set(producers), {}, set()
    while pending:
        for candidate in api.dag_runs(dag_id):
            run_id = candidate["dag_run_id"]
            queued = datetime.fromisoformat(candidate["run_after"].replace("Z", "+00:00"))
            if run_id in inspected or candidate.get("run_type") != "asset_triggered" or queued < triggered_at:
                continue
            inspected.add(run_id)
            consumed = {(e.get("source_dag_id"), e.get("source_run_id"))
                        for e in api.upstream_asset_events(dag_id, run_id)}
            if consumed & pending:
                consumers[run_id] = candidate
                pending -= consumed
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} was not scheduled by the asset events of {sorted(pending)}")
            if on_tick:
                on_tick(dag_id, "waiting for asset events")
            time.sleep(1)
    return sorted(consumers.values(), key=lambda run: run["run_after"])


def run_pipeline(api: AirflowApi, start: datetime, end: datetime, timeout: float = 600,
                 on_tick: Callable[[str, str], None] | None = None) -> list[RunReport]:
    """Trigger the ingest DAGs (ERP stock, Magento orders) for [start, end), wait for them, then
    for the atp_build run(s) their asset events start (ATP and order marts)."""
    reports = []
    began = time.monotonic()
    triggered_at = datetime.now(UTC)
    runs = {dag_id: api.trigger(dag_id, logical_date=_iso(end), data_interval_start=_iso(start),
                                data_interval_end=_iso(end))["dag_run_id"]
            for dag_id in INGEST_DAGS}
    succeeded = set()
    for dag_id, run_id in runs.items():
        run = wait_for_run(api, dag_id, run_id, timeout, on_tick)
        reports.append(_report(api, dag_id, run, began, INGEST_DAGS[dag_id]))
        if run["state"] == "success":
            succeeded.add((dag_id, run_id))
    if not succeeded:
        return reports
    build_dag, result_task = BUILD_DAG
    for candidate in _await_consumers(api, build_dag, succeeded, triggered_at, timeout, on_tick):
        began = time.monotonic()
        run = wait_for_run(api, build_dag, candidate["dag_run_id"], timeout, on_tick)
        reports.append(_report(api, build_dag, run, began, result_task))
    return reports
