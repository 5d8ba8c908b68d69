"""Each DAG's time schedule, written once: the DAG files build their timetables from it and the
pipeline health check (oms.ops.health) judges from it how long a DAG may go without a success.

A cron expression (UTC) for the DAGs on a cron timetable, a timedelta for those on a fixed
interval. DAGs that also run on asset events keep this as their time schedule (the safety net).
Stdlib only: the DAG files import it when they are parsed.
"""

from __future__ import annotations

from datetime import timedelta

SCHEDULES: dict[str, str | timedelta] = {
    "erp_stock_ingest": "*/15 * * * *",
    "magento_orders_ingest": "*/10 * * * *",
    "atp_build": "0 * * * *",
    "magento_stock_publish": "*/30 * * * *",
    "magento_stock_reconcile": "30 2 * * *",
    "order_routing": "*/15 * * * *",
    "kpi_build": "30 * * * *",
    "clickpost_shipments": "*/5 * * * *",
    "clickpost_tracking": "*/10 * * * *",
    "clickpost_tracking_backstop": "*/15 * * * *",
    "aftersale_magento_sync": timedelta(minutes=5),
    "notifications_send": timedelta(minutes=1),
    "erp_reconciliation": "15 3 * * *",
}


def cron(dag_id: str) -> str:
    schedule = SCHEDULES[dag_id]
    if not isinstance(schedule, str):
        raise TypeError(f"{dag_id} runs every {schedule}, not on a cron expression")
    return schedule


def every(dag_id: str) -> timedelta:
    schedule = SCHEDULES[dag_id]
    if not isinstance(schedule, timedelta):
        raise TypeError(f"{dag_id} runs on the cron expression {schedule!r}, not a fixed interval")
    return schedule


def _matches(field: str, value: int) -> bool:
    for part in field.split(","):
        if part == "*" or (part.startswith("*/") and value % int(part[2:]) == 0) or (part.isdigit()
                                                                                    and int(part) == value):
            return True
    return False


def cadence(dag_id: str) -> timedelta:
    """The longest time between two scheduled runs. Cron expressions are read for their minute and
    hour fields; a day, month or weekday field other than `*` is refused (none of our DAGs has one)."""
    schedule = SCHEDULES[dag_id]
    if isinstance(schedule, timedelta):
        return schedule
    minute, hour, *days = schedule.split()
    if days != ["*", "*", "*"]:
        raise ValueError(f"{dag_id}: {schedule!r} restricts days; cadence reads minute and hour only")
    fires = [m for m in range(2 * 24 * 60) if _matches(minute, m % 60) and _matches(hour, m // 60 % 24)]
    return timedelta(minutes=max(later - earlier for earlier, later in zip(fires, fires[1:], strict=False)))
