"""Every DAG imports cleanly and carries what operators rely on: tags, owner, docs, retries ≥ 2,
an explicit timetable with real data intervals where it ingests windows."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[1] / "dags"
EXPECTED = {"erp_stock_ingest", "magento_orders_ingest", "atp_build", "magento_stock_publish", "magento_stock_reconcile",
            "kpi_build", "aftersale_magento_sync", "notifications_send", "order_routing", "erp_reconciliation"}


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_expected_dags_present(dagbag):
    assert EXPECTED <= set(dagbag.dag_ids)


def test_every_dag_is_operable(dagbag):
    from airflow.timetables.simple import NullTimetable

    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md) > 80, f"{dag_id} has no doc_md for the UI"
        assert not isinstance(dag.timetable, NullTimetable), f"{dag_id} has no timetable"
        assert dag.max_active_runs == 1, f"{dag_id} may overlap its own windows"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries={task.retries}"
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"


def test_ingestion_windows_are_real_intervals(dagbag):
    # Airflow 3 defaults to zero-width intervals; an ingestion DAG must declare data intervals.
    from airflow.sdk import CronDataIntervalTimetable, DeltaDataIntervalTimetable

    for dag_id in ("erp_stock_ingest", "magento_orders_ingest"):
        dag = dagbag.get_dag(dag_id)
        assert isinstance(dag.timetable, CronDataIntervalTimetable | DeltaDataIntervalTimetable), dag_id
        assert not dag.catchup, f"{dag_id}: after downtime the next run catches up by itself"


def test_order_ingest_is_mapped_over_channels_and_feeds_the_atp_build(dagbag):
    from oms.assets import RAW_ERP_STOCK, RAW_MAGENTO_ORDER

    dag = dagbag.get_dag("magento_orders_ingest")
    assert dag.timetable.expression == "*/10 * * * *"
    assert dag.get_task("land").is_mapped
    assert [o.name for o in dag.get_task("validate").outlets] == [RAW_MAGENTO_ORDER.name]
    scheduled_on = {a.name for a in dagbag.get_dag("atp_build").timetable.asset_condition.objects}
    assert scheduled_on == {RAW_ERP_STOCK.name, RAW_MAGENTO_ORDER.name}


def test_every_task_alerts_on_failure_and_retry(dagbag):
    from oms.alerting import on_task_failure, on_task_retry

    def callbacks(value) -> list:
        return list(value) if isinstance(value, list | tuple) else [value]

    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            assert on_task_failure in callbacks(task.on_failure_callback), f"{dag_id}.{task.task_id}: no failure alert"
            assert on_task_retry in callbacks(task.on_retry_callback), f"{dag_id}.{task.task_id}: retries not logged"
def test_order_routing_follows_the_order_marts(dagbag):
    from oms.assets import ATP_MARTS

    dag = dagbag.get_dag("order_routing")
    assert dag.timetable.asset_condition.name == ATP_MARTS.name
    assert [t.task_id for t in dag.topological_sort()] == ["route_orders", "expire_pickups"]


def test_every_dags_time_schedule_is_the_one_in_oms_schedules(dagbag):
    """The DAG files build their timetables from oms.schedules, and the pipeline health check judges
    staleness by the same entries, so a schedule is written once."""
    from datetime import timedelta

    from oms import schedules
    from oms.ops.health import DAG_CADENCE

    assert set(schedules.SCHEDULES) == set(dagbag.dags)
    for dag_id, dag in dagbag.dags.items():
        timetable = getattr(dag.timetable, "timetable", dag.timetable)   # AssetOrTimeSchedule wraps one
        expected = schedules.SCHEDULES[dag_id]
        if isinstance(expected, str):
            assert timetable.expression == expected, dag_id
        else:
            assert timetable.delta == expected, dag_id
    assert DAG_CADENCE == {dag_id: schedules.cadence(dag_id) for dag_id in dagbag.dags}
    assert (DAG_CADENCE["erp_stock_ingest"], DAG_CADENCE["atp_build"], DAG_CADENCE["kpi_build"],
            DAG_CADENCE["erp_reconciliation"], DAG_CADENCE["notifications_send"]) == (
        timedelta(minutes=15), timedelta(hours=1), timedelta(hours=1), timedelta(days=1), timedelta(minutes=1))
