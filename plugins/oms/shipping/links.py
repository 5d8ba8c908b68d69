"""The shipping clients from Airflow connections oms_clickpost / oms_magento (looked up at run time)."""

from __future__ import annotations

from oms.shipping.clients import ClickpostClient, MagentoSalesClient


def _conn(conn_id: str):
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def _base_url(conn) -> str:
    extra = conn.extra_dejson
    port = f":{conn.port}" if conn.port else ""
    return f"{extra.get('scheme', 'http')}://{conn.host}{port}"


def clickpost_client(conn_id: str = "oms_clickpost") -> ClickpostClient:
    conn = _conn(conn_id)
    return ClickpostClient(_base_url(conn), username=conn.login, key=conn.password)


def magento_sales_client(conn_id: str = "oms_magento") -> MagentoSalesClient:
    conn = _conn(conn_id)
    return MagentoSalesClient(_base_url(conn), token=conn.password)
