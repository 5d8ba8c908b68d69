"""A fresh stack: every DAG is scheduled from the moment it is parsed (unpaused at creation; a cron
timetable without catchup runs its latest tick at once), before atp_build has built the ATP and
order marts once. No run may fail for that: the DAGs that read those marts wait for the first
build (their tasks skip), the others work on an empty warehouse as on any other.

Every DAG but atp_build, through dag.test(), on a warehouse with only the DDL applied (as `oms up`
or compose's `migrate` leaves it); one try each, so a failure shows as one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest

from oms.warehouse import apply_ddl, connect

from .conftest import fresh_database

DAGS = Path(__file__).resolve().parents[1] / "dags"
LOGICAL_DATE = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)
# The relations dbt builds for atp_build (and that the DAGs below it read): none exists yet.
BUILT_BY_ATP = ("marts.fct_orders", "marts.fct_atp_store", "staging.stg_ref__locations")


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def fresh_dsn(pg_cluster):
    dsn = fresh_database(pg_cluster, "oms_test_fresh")
    apply_ddl(dsn)
    return dsn


def dag_ids():
    from oms.schedules import SCHEDULES

    # every scheduled DAG (clickpost_tracking_backstop is the second DAG of clickpost_tracking.py)
    return sorted(d for d in SCHEDULES if d != "atp_build")


@pytest.mark.parametrize("dag_id", dag_ids())
def test_no_run_fails_before_the_first_atp_build(dag_id, dagbag, fresh_dsn, sandboxes, monkeypatch):
    url = urlparse(fresh_dsn)
    monkeypatch.setenv("AIRFLOW_CONN_OMS_WAREHOUSE", json.dumps(
        {"conn_type": "postgres", "host": url.hostname, "port": url.port, "login": url.username,
         "password": url.password or "", "schema": url.path.lstrip("/")}))
    with connect(fresh_dsn) as conn:
        built = [r for r in BUILT_BY_ATP if conn.execute("SELECT to_regclass(%s) AS r", (r,)).fetchone()["r"]]
    assert not built, f"the warehouse is not fresh: {built}"
    dag = dagbag.get_dag(dag_id)
    for task in dag.tasks:
        task.retries, task.retry_delay = 0, timedelta(0)
    run = dag.test(logical_date=LOGICAL_DATE)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states


def test_after_the_first_atp_build_a_missing_mart_is_a_fault_not_a_wait(fresh_dsn):
    from oms.tasks import ATP_BUILD_MARTS, before_first_atp_build

    assert before_first_atp_build(fresh_dsn) == list(ATP_BUILD_MARTS)
    with connect(fresh_dsn) as conn:
        conn.execute("INSERT INTO oms.atp_snapshot (store_rows, country_rows) VALUES (0, 0)")
    try:
        assert before_first_atp_build(fresh_dsn) == []  # the task runs, and fails on the missing relation
    finally:
        with connect(fresh_dsn) as conn:
            conn.execute("DELETE FROM oms.atp_snapshot")
