"""After-sale documents out: Magento credit memos and comments, Clickpost reverse pickups."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from oms import schedules
from oms.dag_defaults import default_args

DOC = """
### After-sale sync
Sends `oms.magento_outbox` (order comments and offline credit memos of returns, each once: the
sender looks for the document's `[OMS return n]` marker in Magento before every POST) and books
the Clickpost reverse pickups of returns from home (idempotent on reference_number).
docs/returns.md.
"""


@dag(
    dag_id="aftersale_magento_sync",
    schedule=schedules.every("aftersale_magento_sync"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args("integrations", retry_delay=timedelta(minutes=1)),
    tags=["returns", "magento", "clickpost"],
    doc_md=DOC,
)
def aftersale_magento_sync():
    @task
    def send_magento_outbox() -> dict:
        from oms.tasks import aftersale_magento_sync as tasks

        return tasks.send_magento_outbox()

    @task
    def book_reverse_pickups() -> dict:
        from oms.tasks import aftersale_magento_sync as tasks

        return tasks.book_reverse_pickups()

    send_magento_outbox()
    book_reverse_pickups()


aftersale_magento_sync()
