"""One module per DAG: what the DAG's tasks do, with the Airflow connections they need.

dags/<dag>.py stays a thin file (schedule, task graph, docs) and each task calls one function of
oms.tasks.<dag> with the run's context values (data interval, run id). That function looks the
connections up (oms.integrations.connections) at run time and calls the domain code, which takes a
DSN and clients and is tested without Airflow.
"""

from __future__ import annotations

# What atp_build's dbt build creates and the DAGs downstream of it read (with everything dbt builds
# under them, staging and intermediate models such as staging.stg_ref__locations).
ATP_BUILD_MARTS = ("marts.fct_atp_store", "marts.fct_atp_country", "marts.fct_orders", "marts.fct_order_lines")


def before_first_atp_build(dsn: str) -> list[str]:
    """The ATP and order marts not built yet, when atp_build has never completed a build (no
    oms.atp_snapshot row); [] once it has, even if one of them went missing since."""
    from oms.warehouse import connect

    with connect(dsn) as conn:
        if conn.execute("SELECT EXISTS (SELECT 1 FROM oms.atp_snapshot) AS built").fetchone()["built"]:
            return []
        return [r for r in ATP_BUILD_MARTS
                if conn.execute("SELECT to_regclass(%s) IS NULL AS missing", (r,)).fetchone()["missing"]]


def wait_for_atp_build(dsn: str) -> None:
    """Skip the task (and with it the run) while atp_build has never built the marts it reads.

    On a fresh warehouse every DAG is scheduled as soon as it is parsed: a cron timetable without
    catchup runs its latest tick at once, and the time half of an AssetOrTimeSchedule fires whether
    or not its asset has ever had an event (Airflow 3 has no "asset and time" condition). Such a run
    has nothing to read yet; failing it, with its retries and alerts, would say something is broken
    when it is only early. After the first build this never skips: a mart missing then is a fault,
    and the task fails on it.
    """
    missing = before_first_atp_build(dsn)
    if missing:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"{', '.join(missing)} not built yet: atp_build builds them; this DAG runs "
                                   "again on its next schedule or asset event")
