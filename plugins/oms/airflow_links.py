"""Building the platform's clients from Airflow connections (set from config by `oms up`).

Only used inside tasks: connections are looked up at run time, never at DAG parse time.
"""

from __future__ import annotations

from oms.erp.client import ErpClient
from oms.magento.client import MagentoClient

WAREHOUSE_CONN_ID = "oms_warehouse"
ERP_CONN_ID = "oms_erp"
MAGENTO_CONN_ID = "oms_magento"


def _get_connection(conn_id: str):
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def warehouse_dsn(conn_id: str = WAREHOUSE_CONN_ID) -> str:
    conn = _get_connection(conn_id)
    auth = conn.login or "oms"
    if conn.password:
        auth += f":{conn.password}"
    return f"postgresql://{auth}@{conn.host}:{conn.port or 5432}/{conn.schema}"


def erp_client(conn_id: str = ERP_CONN_ID) -> ErpClient:
    conn = _get_connection(conn_id)
    extra = conn.extra_dejson
    scheme = extra.get("scheme", "http")
    return ErpClient(
        base_url=f"{scheme}://{conn.host}:{conn.port}",
        username=conn.login,
        password=conn.password,
        company_id=extra.get("company_id", "default"),
    )


def magento_msi_client(conn_id: str = MAGENTO_CONN_ID):
    """The MSI client and the connection's publishing settings (extra: publish_transport, chunk_size,
    input_limiting — Magento caps synchronous list inputs at 20 items when input limiting is on)."""
    from oms.publishing.msi_client import MagentoMsiClient

    conn = _get_connection(conn_id)
    extra = conn.extra_dejson
    client = MagentoMsiClient(f"{extra.get('scheme', 'http')}://{conn.host}:{conn.port}", conn.password)
    chunk_size = 20 if extra.get("input_limiting") else int(extra.get("chunk_size", 500))
    return client, {"mode": extra.get("publish_transport", "sync"), "chunk_size": chunk_size}


def magento_client(conn_id: str = MAGENTO_CONN_ID) -> MagentoClient:
    """The connection's password is the integration's bearer token; extra may name a store code."""
    conn = _get_connection(conn_id)
    extra = conn.extra_dejson
    scheme = extra.get("scheme", "http")
    port = f":{conn.port}" if conn.port else ""
    return MagentoClient(
        base_url=f"{scheme}://{conn.host}{port}",
        token=conn.password,
        store_code=extra.get("store_code") or None,
    )
