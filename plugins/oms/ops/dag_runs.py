"""Running the pipeline's DAGs now through Airflow's REST API and waiting for them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from oms.integrations.airflow import AirflowApi

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
# (DAG, task whose result is reported, the DAG whose asset event starts it)
DOWNSTREAM = (("magento_stock_publish", "publish_source_items", "atp_build"),
              ("order_routing", "route_orders", "atp_build"),
              ("kpi_build", "dbt_build_kpis", "order_routing"))


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def _landed_at(api: AirflowApi, dag_id: str, run: dict[str, Any]) -> datetime:
    """When the run's data was in: its asset event (emitted when validate committed), else its end."""
    events = api.asset_events(source_dag_id=dag_id, source_run_id=run["dag_run_id"])
    stamps = [_parse(e["timestamp"]) for e in events]
    return max(stamps) if stamps else _parse(run["end_date"])


def _await_asset_run(api: AirflowApi, dag_id: str, landed_by: datetime, timeout: float,
                     on_tick: Callable[[str, str], None] | None) -> dict[str, Any]:
    """The first asset-triggered run of dag_id that started once everything had landed: dbt
    builds from the whole warehouse, so that run covers every ingest before it.

    Waiting on time, not on a run's consumed events: an event that arrives while the consumer is
    held at max_active_runs is folded into the next run without being listed among its events."""
    deadline = time.monotonic() + timeout
    while True:
        started = [r for r in api.dag_runs(dag_id) if r.get("run_type") == "asset_triggered"
                   and r.get("start_date") and _parse(r["start_date"]) >= landed_by]
        if started:
            return min(started, key=lambda r: _parse(r["start_date"]))
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dag_id} was not scheduled by the asset events landed by {landed_by.isoformat()}")
        if on_tick:
            on_tick(dag_id, "waiting for asset events")
        time.sleep(1)


def run_pipeline(api: AirflowApi, start: datetime, end: datetime, timeout: float = 600,
                 on_tick: Callable[[str, str], None] | None = None,
                 downstream: tuple[tuple[str, str, str], ...] = DOWNSTREAM) -> list[RunReport]:
    """Trigger the ingest DAGs (ERP stock, Magento orders) for [start, end), wait for them, then
    for the atp_build run their asset events start (ATP and order marts), then for each downstream
    DAG the run the previous (or its named upstream) DAG's asset event starts (the Magento stock
    publish; order routing after the build)."""
    reports = []
    began = time.monotonic()
    runs = {dag_id: api.trigger(dag_id, logical_date=_iso(end), data_interval_start=_iso(start),
                                data_interval_end=_iso(end))["dag_run_id"]
            for dag_id in INGEST_DAGS}
    landed = []
    for dag_id, run_id in runs.items():
        run = wait_for_run(api, dag_id, run_id, timeout, on_tick)
        reports.append(_report(api, dag_id, run, began, INGEST_DAGS[dag_id]))
        if run["state"] == "success":
            landed.append(_landed_at(api, dag_id, run))
    if not landed:
        return reports
    build_dag, result_task = BUILD_DAG
    began = time.monotonic()
    build = _await_asset_run(api, build_dag, max(landed), timeout, on_tick)
    run = wait_for_run(api, build_dag, build["dag_run_id"], timeout, on_tick)
    reports.append(_report(api, build_dag, run, began, result_task))
    finished = {build_dag: run}
    for dag_id, task_id, after in downstream:
        upstream = finished.get(after)
        if upstream is None or upstream["state"] != "success":
            continue
        began = time.monotonic()
        follow = _await_asset_run(api, dag_id, _landed_at(api, after, upstream), timeout, on_tick)
        finished[dag_id] = wait_for_run(api, dag_id, follow["dag_run_id"], timeout, on_tick)
        reports.append(_report(api, dag_id, finished[dag_id], began, task_id))
    return reports
