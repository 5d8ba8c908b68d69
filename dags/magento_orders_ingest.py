"""Magento orders → raw.magento_order, one mapped pull per channel, gated by Great Expectations."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from oms import schedules
from oms.assets import RAW_MAGENTO_ORDER
from oms.dag_defaults import default_args

DOC = """
### Magento order ingestion
Every 10 minutes, for the run's **data interval**: reads the active channels from `ref.channel`
(at run time: a channel added by `oms channel add` is pulled on the next run) and pulls, per
channel, `GET /rest/V1/orders` with `updated_at ≥ start − overlap and < end` and `store_id` of the
channel, sorted by `updated_at, entity_id`, paged until `currentPage × pageSize ≥ total_count`; one
more pull takes the orders of every other store. Orders land as received in `raw.magento_order`,
one row per version (`entity_id`, `updated_at`), so overlaps, re-runs and backfills add nothing.

The `validate` task gates the window with Great Expectations: malformed records go to
`raw.quarantine` (source `magento_order`) and never reach dbt; business problems (unknown SKU or
channel, unusable pickup store, no shipping address, non-positive quantity, payment not completed)
go to `oms.order_exception` while the order flows on (docs/exceptions.md). Emits
`raw.magento_order`, which schedules `atp_build` (orders marts and ATP).

After downtime the first run reads from the last validated window's end, so nothing is lost
without a backfill; backfill any range with `airflow backfill create --dag-id magento_orders_ingest`.
Settings: `OMS_MAGENTO_OVERLAP_MINUTES` (10), `OMS_MAGENTO_PAGE_SIZE` (100),
`OMS_PAYMENT_TIMEOUT_MINUTES` (60).
"""


@dag(
    dag_id="magento_orders_ingest",
    schedule=CronDataIntervalTimetable(schedules.cron("magento_orders_ingest"), timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args("data-engineering"),
    tags=["ingest", "magento", "orders"],
    doc_md=DOC,
)
def magento_orders_ingest():
    @task
    def plan_pulls(data_interval_start=None, data_interval_end=None) -> list[dict]:
        from oms.tasks import magento_orders_ingest as tasks

        return tasks.plan_interval_pulls(data_interval_start, data_interval_end)

    @task(map_index_template="{{ pull_label }}")
    def land(pull: dict, data_interval_start=None, data_interval_end=None) -> dict:
        from oms.tasks import magento_orders_ingest as tasks

        get_current_context()["pull_label"] = pull["label"]
        return tasks.land_pull(pull, data_interval_start, data_interval_end)

    @task(outlets=[RAW_MAGENTO_ORDER])
    def validate(landed: list[dict], data_interval_start=None, data_interval_end=None) -> dict:
        from oms.tasks import magento_orders_ingest as tasks

        return tasks.validate_interval(list(landed), data_interval_start, data_interval_end)

    validate(land.expand(pull=plan_pulls()))


magento_orders_ingest()
