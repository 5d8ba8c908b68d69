"""Telling Airflow that something happened, through its REST API v2 (never its database).

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

import json
import logging
import os
from pathlib import Path

import httpx

log = logging.getLogger(__name__)


class AirflowEvents:
    def __init__(self, base_url: str | None, username: str = "admin", password_file: str | None = None):
        self.base_url = base_url.rstrip("/") if base_url else None
        self.username = username
        self.password_file = password_file
        self._token: str | None = None
        self._asset_ids: dict[str, int] = {}
        self._sending: set[str] = set()      # asset URIs with an event in flight
        self._due: dict[str, dict] = {}      # asset URI -> extra of the event to send after it

    @classmethod
    def from_env(cls) -> AirflowEvents:
        return cls(os.environ.get("OMS_AIRFLOW_URL"), password_file=os.environ.get("OMS_AIRFLOW_PASSWORDS_FILE"))

    async def _headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        if self._token is None:
            password = json.loads(Path(self.password_file).read_text())[self.username] if self.password_file else ""
            answer = await client.post(f"{self.base_url}/auth/token",
                                       json={"username": self.username, "password": password})
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    async def emit(self, asset_uri: str, extra: dict) -> None:
        """Tell Airflow that `asset_uri` changed: at once, or right after the event in flight for it."""
        if not self.base_url:
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
            async with httpx.AsyncClient(timeout=5) as client:
                headers = await self._headers(client)
                if asset_uri not in self._asset_ids:
                    found = await client.get(f"{self.base_url}/api/v2/assets", headers=headers,
                                             params={"uri_pattern": asset_uri, "limit": 5})
                    found.raise_for_status()
                    self._asset_ids[asset_uri] = next(a["id"] for a in found.json()["assets"] if a["uri"] == asset_uri)
                answer = await client.post(f"{self.base_url}/api/v2/assets/events", headers=headers,
                                           json={"asset_id": self._asset_ids[asset_uri], "extra": extra})
                if answer.status_code == 401:
                    self._token = None
                answer.raise_for_status()
        except (httpx.HTTPError, StopIteration, OSError, KeyError, ValueError) as exc:
            log.warning("could not tell Airflow about %s: %s (the scheduled run will pick it up)", asset_uri, exc)
