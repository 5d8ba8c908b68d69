"""Clients of the after-sale DAGs from Airflow connections (looked up at run time, in tasks only):
oms_magento (credit memos, comments), oms_clickpost (reverse pickups), oms_sms and oms_smtp."""

from __future__ import annotations

from oms.airflow_links import _get_connection


def _base(conn) -> str:
    scheme = conn.extra_dejson.get("scheme", "http")
    return f"{scheme}://{conn.host}" + (f":{conn.port}" if conn.port else "")


def magento_sync():
    from oms.aftersale.magento_sync import MagentoSync

    conn = _get_connection("oms_magento")
    return MagentoSync(_base(conn), conn.password)


def clickpost():
    from oms.aftersale.rvp import Clickpost

    conn = _get_connection("oms_clickpost")
    return Clickpost(_base(conn), conn.login, conn.password)


def notification_channels():
    from oms.notifications.sender import Channels

    sms = _get_connection("oms_sms")
    smtp = _get_connection("oms_smtp")
    return Channels(smtp_host=smtp.host, smtp_port=int(smtp.port or 25),
                    mail_from=smtp.extra_dejson.get("from", "orders@oms.example"), sms_url=_base(sms),
                    sms_key=sms.password)
