"""The platform's clients from Airflow connections (set from config by `oms up`).

One place for every connection the DAGs use: oms_warehouse (Postgres), oms_magento, oms_clickpost,
oms_erp, oms_sms and oms_smtp. Only used inside tasks: connections are looked up at run time,
never at DAG parse time.
"""

from __future__ import annotations

from typing import Any

from oms.integrations.clickpost import ClickpostClient
from oms.integrations.erp import ErpClient
from oms.integrations.magento import MagentoClient
from oms.integrations.notify import Channels

WAREHOUSE_CONN_ID = "oms_warehouse"
ERP_CONN_ID = "oms_erp"
MAGENTO_CONN_ID = "oms_magento"
CLICKPOST_CONN_ID = "oms_clickpost"
SMS_CONN_ID = "oms_sms"
SMTP_CONN_ID = "oms_smtp"


def _get_connection(conn_id: str):
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def _base_url(conn) -> str:
    """scheme://host[:port]; the scheme from the connection's extra (http when absent)."""
    port = f":{conn.port}" if conn.port else ""
    return f"{conn.extra_dejson.get('scheme', 'http')}://{conn.host}{port}"


def warehouse_dsn(conn_id: str = WAREHOUSE_CONN_ID) -> str:
    conn = _get_connection(conn_id)
    auth = conn.login or "oms"
    if conn.password:
        auth += f":{conn.password}"
    return f"postgresql://{auth}@{conn.host}:{conn.port or 5432}/{conn.schema}"


def erp_client(conn_id: str = ERP_CONN_ID) -> ErpClient:
    conn = _get_connection(conn_id)
    return ErpClient(
        base_url=_base_url(conn),
        username=conn.login,
        password=conn.password,
        company_id=conn.extra_dejson.get("company_id", "default"),
    )


def magento_client(conn_id: str = MAGENTO_CONN_ID) -> MagentoClient:
    """The connection's password is the integration's bearer token; extra may name a store code
    (the scope of the orders pull)."""
    conn = _get_connection(conn_id)
    return MagentoClient(_base_url(conn), token=conn.password, store_code=conn.extra_dejson.get("store_code") or None)


def magento_publish_options(conn_id: str = MAGENTO_CONN_ID) -> dict[str, Any]:
    """The connection's stock-publishing settings (extra: publish_transport, chunk_size, input_limiting —
    Magento caps synchronous list inputs at 20 items when input limiting is on)."""
    extra = _get_connection(conn_id).extra_dejson
    chunk_size = 20 if extra.get("input_limiting") else int(extra.get("chunk_size", 500))
    return {"mode": extra.get("publish_transport", "sync"), "chunk_size": chunk_size}


def clickpost_client(conn_id: str = CLICKPOST_CONN_ID) -> ClickpostClient:
    conn = _get_connection(conn_id)
    return ClickpostClient(_base_url(conn), username=conn.login, key=conn.password)


def notification_channels(sms_conn_id: str = SMS_CONN_ID, smtp_conn_id: str = SMTP_CONN_ID) -> Channels:
    sms = _get_connection(sms_conn_id)
    smtp = _get_connection(smtp_conn_id)
    return Channels(smtp_host=smtp.host, smtp_port=int(smtp.port or 25),
                    mail_from=smtp.extra_dejson.get("from", "orders@oms.example"), sms_url=_base_url(sms),
                    sms_key=sms.password)
