"""Telling Airflow that something happened, through its REST API v2 (never its database), with
the one Airflow client (oms.integrations.airflow.AirflowApi).

The API records an ERP movement itself; the outbound effect (publishing to Magento) stays an
Airflow task, scheduled by this asset event. Off unless OMS_AIRFLOW_URL is set (the embedded
stack sets it); a failure is logged and left to the publish DAG's 30-minute schedule.

At most one event per asset is in flight from an API worker: the changes made while it is sent
become one event sent right after it (it may have been read before them). One POST per change,
unbounded, kept Airflow's api-server so busy under a steady stream of ERP batches (several a
second) that tasks' heartbeats to it timed out and Airflow killed the tasks; this way the events
slow down as the api-server does, and a lone change is still sent at once.
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
        self._sending: set[str] = set()      # asset URIs with an event in flight
        self._due: dict[str, dict] = {}      # asset URI -> extra of the event to send after it

    @property
    def base_url(self) -> str | None:
        return self.api.base_url if self.api else None

    @classmethod
    def from_env(cls) -> AirflowEvents:
        return cls(os.environ.get("OMS_AIRFLOW_URL"), password_file=os.environ.get("OMS_AIRFLOW_PASSWORDS_FILE"))

    async def emit(self, asset_uri: str, extra: dict) -> None:
        """Tell Airflow that `asset_uri` changed: at once, or right after the event in flight for it."""
        if self.api is None:
            return
        if asset_uri in self._sending:
            self._due[asset_uri] = extra  # the latest change's
            return
        self._sending.add(asset_uri)
        try:
            while True:
                await self._send(asset_uri, extra)
                if asset_uri not in self._due:
                    return
                extra = self._due.pop(asset_uri)
        finally:
            self._sending.discard(asset_uri)

    async def _send(self, asset_uri: str, extra: dict) -> None:
        try:
            await self.api.emit_asset_event(asset_uri, extra)
        except (httpx.HTTPError, StopIteration, OSError, KeyError, ValueError) as exc:
            log.warning("could not tell Airflow about %s: %s (the scheduled run will pick it up)", asset_uri, exc)
