"""Assets between DAGs: a producer's successful task emits the event that schedules the consumer."""

from airflow.sdk import Asset

RAW_ERP_STOCK = Asset(name="raw.erp_stock", uri="oms://warehouse/raw/erp_stock")
ATP_MARTS = Asset(name="marts.atp", uri="oms://warehouse/marts/atp")
