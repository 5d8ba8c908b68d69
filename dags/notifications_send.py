"""Customer notifications out: the oms.notification outbox by email (SMTP) and SMS (HTTP provider)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from oms import schedules
from oms.dag_defaults import default_args

DOC = """
### Notifications
Sends every due row of `oms.notification` (one per event, order and channel). SMS exactly once
through the provider's idempotency key; email at most once after the SMTP server accepted it.
Failed sends are retried with back-off (up to 5 attempts). docs/notifications.md.
"""


@dag(
    dag_id="notifications_send",
    schedule=schedules.every("notifications_send"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args("customer-care", retry_delay=timedelta(seconds=30)),
    tags=["notifications", "email", "sms"],
    doc_md=DOC,
)
def notifications_send():
    @task
    def send_due_notifications() -> dict:
        from oms.tasks import notifications_send as tasks

        return tasks.send_due_notifications()

    send_due_notifications()


notifications_send()
