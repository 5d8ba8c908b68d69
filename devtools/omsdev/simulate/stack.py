"""The stack a simulation drives: the vendor sandboxes in this process on a simulated clock (real
HTTP on loopback), the API as its own process, and the platform's DAGs run with `dag.test()` at
the simulated moment.

Why `dag.test()` and not the scheduler: the scheduler runs on the wall clock (asset-triggered runs
get "now" as their data interval end, and routing decides at that moment), so a month squeezed
into minutes would route each order at the wrong time and in an order that depends on the
machine's load. `dag.test(logical_date=…)` runs the same DAG files, tasks, retries and asset
outlets in this process, at the simulated moment, one after the other: the same run twice gives
the same warehouse.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import httpx

from oms.settings import Settings
from omsdev.sandbox import clickpost, erp, magento, server


class SimClock:
    """The sandboxes' clock: the simulated moment, moved forward by the simulator only."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        if moment > self.now:
            self.now = moment


class Sandboxes:
    """Magento, Clickpost and the ERP served from a thread of this process, on the simulated clock."""

    def __init__(self, settings: Settings, clock: SimClock, webhook_key: str) -> None:
        creds = server.resolve_credentials({
            "magento_token": settings.magento_token, "clickpost_username": settings.clickpost_username,
            "clickpost_key": settings.clickpost_key, "clickpost_webhook_url": f"{settings.api_url}/v1/webhooks/clickpost",
            "clickpost_webhook_key": webhook_key, "erp_username": settings.erp_username,
            "erp_password": settings.erp_password, "erp_company_id": settings.erp_company_id})
        self.magento = magento.create_app(creds.magento_token, clock=clock, bulk_delay_seconds=0.0)
        self.clickpost = clickpost.create_app(creds.clickpost_username, creds.clickpost_key,
                                              creds.clickpost_webhook_url, creds.clickpost_webhook_key,
                                              async_delay_seconds=0.0, clock=clock)
        self.erp = erp.create_app(creds.erp_username, creds.erp_password, company_id=creds.erp_company_id,
                                  clock=clock)
        self.apps = {settings.magento_port: self.magento, settings.clickpost_port: self.clickpost,
                     settings.erp_port: self.erp}
        self.health = f"{settings.erp_url}/_sandbox/faults"
        self.thread: threading.Thread | None = None

    def start(self, timeout: float = 30) -> None:
        self.thread = threading.Thread(target=lambda: asyncio.run(server.serve_all(self.apps)), daemon=True,
                                       name="sandboxes")
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.health, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not self.thread.is_alive():
                break
            time.sleep(0.1)
        raise RuntimeError("the sandboxes did not start (ports taken?)")


class Dags:
    """The platform's DAG files, run with dag.test() at a simulated moment."""

    def __init__(self, dags_folder: str) -> None:
        from airflow.dag_processing.dagbag import DagBag

        self.bag = DagBag(dag_folder=dags_folder)
        if self.bag.import_errors:
            raise RuntimeError(f"DAG import errors: {self.bag.import_errors}")
        for dag in self.bag.dags.values():
            for task in dag.tasks:  # a failed try is retried by the next tick, as after an outage
                task.retries = 0
        self.runs: list[dict[str, Any]] = []
        self.synced = False   # the DAG folder written to Airflow's database by a first dag.test()

    def run(self, dag_id: str, at: datetime) -> str:
        started = time.perf_counter()
        try:
            with self._folder_synced_once():
                state = str(self.bag.get_dag(dag_id).test(logical_date=at.astimezone(UTC)).state)
            self.synced = True
        except Exception as exc:  # noqa: BLE001 — a run that raises is a failed run; the next tick retries
            state = f"error: {type(exc).__name__}: {exc}"[:300]
        self.runs.append({"dag_id": dag_id, "at": at.isoformat(), "state": state,
                          "seconds": round(time.perf_counter() - started, 2)})
        return state

    @contextmanager
    def _folder_synced_once(self) -> Iterator[None]:
        """dag.test() parses the whole DAG folder again and writes every DAG of it to Airflow's
        database on each call (so that DAGs a TriggerDagRunOperator names exist; apache/airflow#64884):
        191 s of the 983 s of DAG runs of a 3-day run at S (110 runs, ~1.7 s each at load 7–21,
        py-spy). The files do not change during a simulation, so once the first run has written
        them, later runs reuse the bag parsed here and skip the write (it would find every DAG's
        hash unchanged). The run itself — the DAG run, its task instances, each task executed in
        this process — is dag.test()'s own."""
        if not self.synced:
            yield
            return
        from airflow.dag_processing import dagbag

        with mock.patch.object(dagbag, "BundleDagBag", lambda *args, **kwargs: self.bag), \
                mock.patch.object(dagbag, "sync_bag_to_db", lambda *args, **kwargs: None):
            yield
