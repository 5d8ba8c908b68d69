"""Chaos: the local stack as `oms up` runs it, under a stream of ERP movements (through the API, two
workers) and web orders (into the Magento sandbox), loses in turn an API worker, the scheduler, a
task mid-run and Postgres — each by `kill -9` — and heals: uvicorn restarts its worker, the stack's
supervisor restarts the scheduler, Airflow retries the task, and `oms up` restarts Postgres and
whatever Airflow's monitor then calls unhealthy. The next `oms pipeline run` succeeds with no
other command, and the counts show nothing lost and nothing done twice: every movement the ERP sent
is in the ledger once, every web order landed once, and Magento's source items are what the
publish ledger says was published.

A stack of its own: its own state folder (.oms/chaos), Postgres cluster and ports (derived from
OMS_TEST_PORT_OFFSET, away from the session's test cluster and from the demo's ports).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

REPO = Path(__file__).resolve().parents[1]
OMS = str(Path(sys.executable).parent / "oms")
_OFFSET = int(os.environ.get("OMS_TEST_PORT_OFFSET", "0"))
CHAOS_ENV = {
    "OMS_STATE_DIR": str(REPO / ".oms" / "chaos"),
    "OMS_PG_PORT": str(5547 + _OFFSET),
    "OMS_WAREHOUSE_DB": "oms",
    "OMS_AIRFLOW_DB": "airflow",
    "OMS_API_PORT": str(18006 + _OFFSET),
    "OMS_API_WORKERS": "2",
    "OMS_AIRFLOW_PORT": str(18007 + _OFFSET),
    "OMS_MAGENTO_PORT": str(18008 + _OFFSET),
    "OMS_CLICKPOST_PORT": str(18009 + _OFFSET),
    "OMS_ERP_PORT": str(18010 + _OFFSET),
    "OMS_SMS_PORT": str(18011 + _OFFSET),
    "OMS_SMTP_PORT": str(18012 + _OFFSET),
    "OMS_SUPERVISOR_MAX_BACKOFF": "5",
}


def chaos_settings():
    from oms.settings import Settings

    with mock.patch.dict(os.environ, CHAOS_ENV):
        return Settings()


def oms(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The operator's command, in the chaos stack's environment (not the test session's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMS_", "AIRFLOW"))}
    return subprocess.run([OMS, *args], env={**env, **CHAOS_ENV, "COLUMNS": "200"}, capture_output=True,
                          text=True, timeout=timeout)


def wait(what: str, condition, timeout: float = 180, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def patient(call, *args, tries: int = 5, **kwargs):
    """An Airflow REST call that a saturated api-server may time out on: asked again, as an operator would."""
    for attempt in range(tries):
        try:
            return call(*args, **kwargs)
        except httpx.TransportError:
            if attempt == tries - 1:
                raise
            time.sleep(5)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> list[int]:
    """The API's worker processes (not multiprocessing's resource tracker)."""
    try:
        found = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    workers = []
    for child in found:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes() and alive(child):
                workers.append(child)
        except OSError:
            continue
    return workers


class Stream:
    """The ERP pushing movements (one new document per tick, each sent until acknowledged under the
    same key, as the ERP's retry logic does) and customers placing web orders."""

    def __init__(self, settings, token: str, orders: list[dict], sku: str, store: str):
        self.settings, self.token, self.orders, self.sku, self.store = settings, token, orders, sku, store
        self.acked: set[str] = set()
        self.pending: list[dict] = []
        self.placed: list[int] = []
        self.failures = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.n = 0

    def movement(self) -> dict:
        self.n += 1
        return {"document_id": f"CHAOS-{self.n:05d}", "line_no": 1, "movement_type": "adjustment",
                "store_id": self.store, "sku": self.sku, "qty": 1,
                "posted_at": (datetime.now(UTC) - timedelta(seconds=5)).isoformat()}

    def send(self, client: httpx.Client, line: dict) -> bool:
        try:
            answer = client.post(f"{self.settings.api_url}/v1/erp/stock-movements", json={"lines": [line]},
                                 headers={"Authorization": f"Bearer {self.token}"})
        except httpx.HTTPError:
            self.failures += 1
            return False
        if answer.status_code >= 500:
            self.failures += 1
            return False
        assert answer.status_code in (200, 207), answer.text
        status = answer.json()["lines"][0]["status"]
        assert status in ("accepted", "duplicate"), answer.text
        self.acked.add(line["document_id"])
        return True

    def place_order(self, client: httpx.Client) -> None:
        if len(self.placed) >= len(self.orders):
            return
        order = self.orders[len(self.placed)]
        try:
            client.post(f"{self.settings.magento_url}/_sandbox/orders", json=[order]).raise_for_status()
        except httpx.HTTPError:
            self.failures += 1
            return
        self.placed.append(order["entity_id"])

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            tick = 0
            while not self.stop.is_set():
                tick += 1
                self.pending.append(self.movement())
                self.pending = [line for line in self.pending if not self.send(client, line)]
                if tick % 3 == 0:
                    self.place_order(client)
                time.sleep(0.3)

    def finish(self, timeout: float = 120) -> None:
        """Stop sending new documents; deliver what is still unacknowledged."""
        self.stop.set()
        self.thread.join(30)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=10) as client:
            while self.pending and time.monotonic() < deadline:
                self.pending = [line for line in self.pending if not self.send(client, line)]
                time.sleep(1)
        assert not self.pending, f"{len(self.pending)} movements never acknowledged"


@pytest.fixture(scope="module")
def stack():
    settings = chaos_settings()
    oms("down", timeout=120)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    started = time.monotonic()
    try:
        up = oms("up", timeout=900)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        print(f"\nchaos stack up in {time.monotonic() - started:.0f}s")
        yield settings
    finally:
        oms("down", timeout=120)


def supervised(settings) -> dict:
    from omsdev.stack import supervisor

    return supervisor.read_state(settings.state_dir)["components"]


def monitor(settings) -> dict:
    return httpx.get(f"{settings.airflow_url}/api/v2/monitor/health", timeout=5).json()


def healthy(settings) -> bool:
    try:
        body = monitor(settings)
    except (httpx.HTTPError, ValueError):
        return False
    return all(body[k]["status"] == "healthy" for k in ("metadatabase", "scheduler", "triggerer", "dag_processor"))


def test_kill_9_in_turn_and_nothing_is_lost_or_done_twice(stack):
    from oms import tokens
    from oms.integrations.airflow import airflow_api
    from oms.warehouse import connect
    from omsdev import demo, demo_data
    from omsdev.stack import processes

    settings = stack
    demo.load(settings, skus=12, stores_per_country=2, orders=0)
    data = demo_data.generate(skus=12, stores_per_country=2, orders=24, seed=demo.SEED, as_of=demo.demo_as_of())
    with connect(settings.warehouse_dsn) as conn:
        token = tokens.create_token(conn, "chaos-erp", ["erp:write"])
    stream = Stream(settings, token, data.orders, data.skus[0]["sku"], data.locations[0]["store_id"])
    stream.thread.start()
    timeline: list[str] = []
    t0 = time.monotonic()

    def note(event: str) -> None:
        timeline.append(f"{time.monotonic() - t0:6.1f}s {event}")

    # 1. an API worker: uvicorn starts another; the ERP's retries land on the live one meanwhile
    api_pid = processes.read_pid(settings.state_dir, "api")
    workers = wait("two API workers", lambda: len(children(api_pid)) == 2 and children(api_pid))
    acked = len(stream.acked)
    os.kill(workers[0], signal.SIGKILL)
    note(f"kill -9 API worker {workers[0]}")
    wait("a new API worker", lambda: len(children(api_pid)) == 2 and workers[0] not in children(api_pid), 120)
    wait("movements acknowledged after the worker died", lambda: len(stream.acked) > acked + 3, 60)
    note("API worker replaced")

    # 2. the scheduler: the supervisor starts another, Airflow's monitor calls it healthy again
    scheduler = supervised(settings)["scheduler"]["pid"]
    os.kill(scheduler, signal.SIGKILL)
    note(f"kill -9 scheduler {scheduler}")
    wait("a new scheduler", lambda: supervised(settings)["scheduler"]["pid"] not in (None, scheduler), 60)
    wait("the scheduler healthy by the monitor", lambda: healthy(settings), 240, 3)
    note("scheduler restarted and healthy")

    # 3. a task mid-run (atp_build's dbt build: long enough to be caught running): Airflow retries
    #    it and the run succeeds
    api = airflow_api(settings)
    patient(api.wait_for_dags, ("atp_build",), 240)
    patient(api.trigger, "atp_build")  # one more run; a scheduled one may already be ahead of it (one at a time)

    def running_task():
        for candidate in patient(api.dag_runs, "atp_build", 3):
            for ti in patient(api.task_instances, "atp_build", candidate["dag_run_id"]):
                if ti["task_id"] == "dbt_build_atp" and ti["state"] == "running" and ti.get("pid") and alive(ti["pid"]):
                    return candidate, ti
        return None

    run, ti = wait("atp_build's dbt build running", running_task, 600, 0.5)
    os.kill(ti["pid"], signal.SIGKILL)
    note(f"kill -9 task {ti['task_id']} (pid {ti['pid']}, try {ti['try_number']})")
    finished = wait("the interrupted run to finish", lambda: patient(api.dag_run, "atp_build", run["dag_run_id"])[
        "state"] in ("success", "failed") and patient(api.dag_run, "atp_build", run["dag_run_id"]), 1200, 3)
    tries = {t["task_id"]: t["try_number"] for t in patient(api.task_instances, "atp_build", run["dag_run_id"])}
    assert finished["state"] == "success", tries
    assert tries[ti["task_id"]] > ti["try_number"], tries  # it was retried, by Airflow alone
    note(f"interrupted run {finished['state']} (tries {tries})")

    # 4. Postgres: `oms up` brings it back and heals Airflow; then the pipeline runs, no other command
    from omsdev.stack import postgres

    postmaster = postgres.server_pid(postgres.data_dir(settings))
    os.kill(postmaster, signal.SIGKILL)
    note(f"kill -9 postmaster {postmaster}")
    time.sleep(5)  # the outage: the API answers errors, the ERP keeps retrying, Airflow's jobs lose their DB
    up = oms("up", timeout=600)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    note("oms up: " + next((line.strip() for line in up.stderr.splitlines() if line.strip().startswith("airflow")),
                           "?"))
    stream.finish()
    note(f"stream stopped: {len(stream.acked)} movements acknowledged, {len(stream.placed)} orders placed, "
         f"{stream.failures} failed attempts retried")
    since = (datetime.now(UTC) - timedelta(days=15)).replace(microsecond=0).isoformat()
    ran = oms("pipeline", "run", "--from", since, timeout=1800)
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-3000:]
    note("oms pipeline run: success")

    # the counts
    with connect(settings.warehouse_dsn) as conn:
        ledger = conn.execute("SELECT count(*) AS lines, count(DISTINCT document_id) AS documents"
                              " FROM oms.erp_movement WHERE document_id LIKE 'CHAOS-%%'").fetchone()
        landed = conn.execute("SELECT count(*) AS rows, count(DISTINCT entity_id) AS orders FROM raw.magento_order"
                              " WHERE entity_id = ANY(%s)", (stream.placed,)).fetchone()
        published = {(r["sku"], r["source_code"]): float(r["quantity"]) for r in conn.execute(
            "SELECT sku, source_code, quantity FROM oms.publish_ledger")}
    source_items = {(i["sku"], i["source_code"]): float(i["quantity"])
                    for i in httpx.get(f"{settings.magento_url}/_sandbox/source-items", timeout=30).json()}
    counts = {"movements acknowledged": len(stream.acked), "ledger lines": ledger["lines"],
              "ledger documents": ledger["documents"], "orders placed": len(stream.placed),
              "orders landed": landed["orders"], "order rows": landed["rows"],
              "source items published": len(published), "Magento source items": len(source_items)}
    print("\n" + "\n".join(timeline) + "\ncounts: " + json.dumps(counts))
    assert ledger["lines"] == ledger["documents"] == len(stream.acked) == stream.n  # none lost, none twice
    assert landed["orders"] == landed["rows"] == len(stream.placed) > 0
    assert published and all(source_items.get(key) == qty for key, qty in published.items())
