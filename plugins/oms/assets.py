"""Assets between DAGs: a producer's successful task emits the event that schedules the consumer."""

from airflow.sdk import Asset

RAW_ERP_STOCK = Asset(name="raw.erp_stock", uri="oms://warehouse/raw/erp_stock")
RAW_MAGENTO_ORDER = Asset(name="raw.magento_order", uri="oms://warehouse/raw/magento_order")
ATP_MARTS = Asset(name="marts.atp", uri="oms://warehouse/marts/atp")
# Emitted by the API (through Airflow's REST API) when the ERP posts movements: schedules the publish.
ERP_MOVEMENTS = Asset(name="oms.erp_movement", uri="oms://warehouse/oms/erp_movement")
# Emitted when a routing run recorded decisions (allocations to ship, KPIs to count).
ROUTING_DECISIONS = Asset(name="oms.routing_decision", uri="oms://warehouse/oms/routing_decision")
# Emitted after the KPI marts (fct_fulfilment_daily, fct_promise_accuracy_daily, …) are rebuilt.
KPI_MARTS = Asset(name="marts.kpis", uri="oms://warehouse/marts/kpis")
# Emitted by the API (through Airflow's REST API) when a Clickpost webhook brings a new scan.
SHIPMENT_TRACKING = Asset(name="oms.shipment_event", uri="oms://warehouse/oms/shipment_event")
