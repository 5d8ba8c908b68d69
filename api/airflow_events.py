"""Telling Airflow that something happened, through its REST API v2 (never its database), with
the one Airflow client (oms.integrations.airflow.AirflowApi).

The API records an ERP movement itself; the outbound effect (publishing to Magento) stays an
Airflow task, scheduled by this asset event. Off unless OMS_AIRFLOW_URL is set (the embedded
stack sets it); a failure is logged and left to the publish DAG's 30-minute schedule.
"""

from __future__ import annotations

import logging
import os

import httpx

from oms.integrations.airflow import ADMIN_USER, AirflowApi

log = logging.getLogger(__name__)


class AirflowEvents:
    def __init__(self, base_url: str | None, username: str = ADMIN_USER, password_file: str | None = None):
        # One client for the API's life: its login token and asset ids are kept between requests.
        self.api = AirflowApi(base_url, username=username, password_file=password_file) if base_url else None

    @property
    def base_url(self) -> str | None:
        return self.api.base_url if self.api else None

    @classmethod
    def from_env(cls) -> AirflowEvents:
        return cls(os.environ.get("OMS_AIRFLOW_URL"), password_file=os.environ.get("OMS_AIRFLOW_PASSWORDS_FILE"))

    async def emit(self, asset_uri: str, extra: dict) -> None:
        if self.api is None:
            return
        try:
            await self.api.emit_asset_event(asset_uri, extra)
        except (httpx.HTTPError, StopIteration, OSError, KeyError, ValueError) as exc:
            log.warning("could not tell Airflow about %s: %s (the scheduled run will pick it up)", asset_uri, exc)
