"""Chaos: the local stack as `oms up` runs it, under a stream of ERP movements (through the API, two
workers), web orders (into the Magento sandbox) and Clickpost tracking webhooks (the Clickpost
sandbox posting courier scans to the API), loses in turn an API worker, the scheduler, a task
mid-run and Postgres — each by `kill -9` — and heals: uvicorn restarts its worker, the stack's
supervisor restarts the scheduler (and kills what the dead one left running), Airflow retries the
task, and `oms up` restarts Postgres and whatever Airflow's monitor then calls unhealthy. The next
`oms pipeline run` succeeds with no other command, and the counts show nothing lost and nothing
done twice: every movement the ERP sent is in the ledger once, every web order landed (each of
its versions once), Magento's source items are what the publish ledger says was published, every
routed parcel is one Clickpost order and one Magento shipment, every scan the webhooks carried is
recorded once, and every shipped line is one ERP sales posting.

The first orders are placed before the chaos: a pipeline run lands and routes them while atp_build's
dbt build is killed under it (the stack's first scheduled build or the pipeline's own, whichever is
caught running with a retry left), clickpost_shipments ships them, and their parcels' scans are the
webhooks of the stream from then on, through the Postgres outage.

A stack of its own: its own state folder (.oms/chaos), Postgres cluster and ports (derived from
OMS_TEST_PORT_OFFSET, away from the session's test cluster and from the demo's ports). The DAGs
that neither feed nor read what the counts check and that `oms pipeline run` does not wait for
(notifications, after-sale sync, the daily ERP reconciliation) are paused once the stack is up: on two shared cores their runs only slow the
ones under test.

Bounded: every wait draws on one budget for the whole test (BUDGET, stack start included), so a
hang fails with what it was waiting for and the timeline so far, before pytest's timeout (TIMEOUT,
this file's own: the suite's default is 900 s) would kill it with a bare stack trace;
TEARDOWN_RESERVE is left for `oms down`. The budget is three times what the test takes on an idle
machine (~330 s), because under `make test` it shares the two cores with the other worker.
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

TIMEOUT = 1200  # seconds: BUDGET + TEARDOWN_RESERVE and some slack
pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.long, pytest.mark.timeout(TIMEOUT)]

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
BUDGET = 1000.0         # seconds, from the start of `oms up` to the last count
TEARDOWN_RESERVE = 120  # pytest's timeout also covers the fixture's `oms down`
# not kpi_build: `oms pipeline run` waits for its asset-triggered run, which a paused DAG never starts
PAUSED = ("notifications_send", "aftersale_magento_sync", "erp_reconciliation")
INITIAL_ORDERS = 8   # placed before the chaos; the stream places the rest
SCANS = (4, 5)       # picked up (the parcel has left: its lines are posted to the ERP), in transit


def chaos_settings():
    from oms.settings import Settings

    with mock.patch.dict(os.environ, CHAOS_ENV):
        return Settings()


class Budget:
    """One deadline for the whole test; each wait takes the smaller of its own timeout and what is
    left, and says which of the two ran out."""

    def __init__(self, seconds: float):
        self.seconds, self.deadline = seconds, time.monotonic() + seconds
        self.timeline: list[str] = []

    def left(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)

    def cap(self, timeout: float) -> float:
        return max(min(timeout, self.left()), 1.0)

    def why(self, what: str, timeout: float) -> str:
        spent = f"the test's budget of {self.seconds:.0f}s spent" if self.left() <= 1.0 else f"{timeout:.0f}s passed"
        return f"{spent} waiting for {what}; timeline so far:\n" + "\n".join(self.timeline)


budget = Budget(BUDGET)  # restarted by the stack fixture


def oms(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The operator's command, in the chaos stack's environment (not the test session's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMS_", "AIRFLOW"))}
    try:
        return subprocess.run([OMS, *args], env={**env, **CHAOS_ENV, "COLUMNS": "200"}, capture_output=True,
                              text=True, timeout=budget.cap(timeout))
    except subprocess.TimeoutExpired as exc:
        pytest.fail(budget.why(f"`oms {' '.join(args)}` (its output: {str(exc.stdout or '')[-1500:]})", timeout))


def wait(what: str, condition, timeout: float = 180, every: float = 1.0):
    deadline = time.monotonic() + budget.cap(timeout)
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() >= deadline:
            pytest.fail(budget.why(what, timeout))
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
    same key, as the ERP's retry logic does), customers placing web orders, and couriers scanning
    parcels: once `scans` is given, one scan a tick goes to the Clickpost sandbox, which posts it
    as a webhook to the API; one the API did not take is sent again later (Clickpost retries)."""

    def __init__(self, settings, token: str, orders: list[dict], sku: str, store: str):
        self.settings, self.token, self.orders, self.sku, self.store = settings, token, orders, sku, store
        self.acked: set[str] = set()
        self.pending: list[dict] = []
        self.placed: list[int] = []
        self.failures = 0
        self.scans: list[dict] = []       # still to deliver
        self.delivered: list[dict] = []   # taken by the API (2xx)
        self.webhook_attempts = 0
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

    def scan(self, client: httpx.Client) -> None:
        if not self.scans:
            return
        scan = self.scans[0]
        self.webhook_attempts += 1
        try:
            answer = client.post(f"{self.settings.clickpost_url}/_sandbox/advance", json=[scan], timeout=60)
            answer.raise_for_status()
        except httpx.HTTPError:
            self.failures += 1
            return
        if all(d["delivered"] for d in answer.json()["deliveries"]):
            self.delivered.append(self.scans.pop(0))
        else:
            self.failures += 1

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            tick = 0
            while not self.stop.is_set():
                tick += 1
                self.pending.append(self.movement())
                self.pending = [line for line in self.pending if not self.send(client, line)]
                if tick % 3 == 0:
                    self.place_order(client)
                if tick % 2 == 0:
                    self.scan(client)
                time.sleep(0.3)

    def finish(self, timeout: float = 120) -> None:
        """Stop sending new documents; deliver what is still unacknowledged."""
        self.stop.set()
        self.thread.join(30)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=10) as client:
            while (self.pending or self.scans) and time.monotonic() < deadline:
                self.pending = [line for line in self.pending if not self.send(client, line)]
                self.scan(client)
                time.sleep(0.5)
        assert not self.pending, f"{len(self.pending)} movements never acknowledged"
        assert not self.scans, f"{len(self.scans)} scans' webhooks never taken by the API"


@pytest.fixture(scope="module")
def stack():
    global budget
    settings = chaos_settings()
    oms("down", timeout=120)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    budget = Budget(BUDGET)
    started = time.monotonic()
    try:
        up = oms("up", timeout=600)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        budget.timeline.append(f"chaos stack up in {time.monotonic() - started:.0f}s")
        print("\n" + budget.timeline[-1])
        yield settings
    finally:
        budget.deadline = time.monotonic() + TEARDOWN_RESERVE
        oms("down", timeout=TEARDOWN_RESERVE)


def supervised(settings) -> dict:
    from omsdev.stack import supervisor

    return supervisor.read_state(settings.state_dir)["components"]


def monitor(settings) -> dict:
    return httpx.get(f"{settings.airflow_url}/api/v2/monitor/health", timeout=5).json()


def finished(api, dag_id: str, run_id: str, timeout: float) -> dict:
    """The run once it has ended (success or failed), within the budget."""
    return wait(f"{dag_id} run {run_id} to end", lambda: (run := patient(api.dag_run, dag_id, run_id))["state"] in (
        "success", "failed") and run, timeout, 2)


def healthy(settings, scheduler_since: datetime | None = None) -> bool:
    """Every job component healthy by Airflow's monitor; with `scheduler_since`, by a scheduler
    heartbeat newer than that (the monitor still calls a killed scheduler healthy for 30 s on the
    heartbeat it wrote before it died)."""
    try:
        body = monitor(settings)
    except (httpx.HTTPError, ValueError):
        return False
    if not all(body[k]["status"] == "healthy" for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")):
        return False
    if scheduler_since is None:
        return True
    beat = body["scheduler"].get("latest_scheduler_heartbeat")
    return beat is not None and datetime.fromisoformat(beat) > scheduler_since


def magento_tracks(settings, entity_ids: list[int]) -> list[str]:
    """Every AWB on a Magento shipment of these orders (one per shipment track)."""
    headers = {"Authorization": f"Bearer {settings.magento_token}"}
    found = []
    for entity_id in entity_ids:
        items = httpx.get(f"{settings.magento_url}/rest/V1/shipments", headers=headers, timeout=30, params={
            "searchCriteria[filter_groups][0][filters][0][field]": "order_id",
            "searchCriteria[filter_groups][0][filters][0][value]": entity_id}).json()["items"]
        found.extend(t["track_number"] for shipment in items for t in shipment["tracks"])
    return found


def test_kill_9_in_turn_and_nothing_is_lost_or_done_twice(stack):
    from oms import tokens
    from oms.integrations.airflow import airflow_api
    from oms.ops.dag_runs import run_pipeline
    from oms.warehouse import connect
    from omsdev import demo, demo_data
    from omsdev.stack import processes

    settings = stack
    api = airflow_api(settings)
    patient(api.wait_for_dags, PAUSED, budget.cap(240))
    for dag_id in PAUSED:
        patient(api.request, "PATCH", f"/dags/{dag_id}", json={"is_paused": True})
    demo.load(settings, skus=12, stores_per_country=2, orders=0)
    data = demo_data.generate(skus=12, stores_per_country=2, orders=24, seed=demo.SEED, as_of=demo.demo_as_of())
    httpx.post(f"{settings.magento_url}/_sandbox/orders", json=data.orders[:INITIAL_ORDERS],
               timeout=60).raise_for_status()
    with connect(settings.warehouse_dsn) as conn:
        token = tokens.create_token(conn, "chaos-erp", ["erp:write"])
    stream = Stream(settings, token, data.orders[INITIAL_ORDERS:], data.skus[0]["sku"], data.locations[0]["store_id"])
    stream.thread.start()
    timeline = budget.timeline
    t0 = time.monotonic()

    def note(event: str) -> None:
        timeline.append(f"{time.monotonic() - t0:6.1f}s {event}")
        print(timeline[-1], flush=True)

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
    killed_at = datetime.now(UTC)
    note(f"kill -9 scheduler {scheduler}")
    wait("a new scheduler", lambda: supervised(settings)["scheduler"]["pid"] not in (None, scheduler), 60)
    wait("a scheduler heartbeat newer than the kill", lambda: healthy(settings, scheduler_since=killed_at), 240, 3)
    note("scheduler restarted and healthy")

    # 3. a task mid-run: the pipeline over the first orders (land, ATP and order marts, routing), and
    #    atp_build's dbt build (long enough to be caught running; on a fresh stack the first
    #    scheduled build's, which the pipeline's build waits for) killed under it: Airflow retries
    #    it, the run succeeds, the pipeline goes on
    patient(api.wait_for_dags, ("erp_stock_ingest", "magento_orders_ingest", "atp_build", "order_routing",
                                "clickpost_shipments", "clickpost_tracking"), budget.cap(240))
    since = (datetime.now(UTC) - timedelta(days=15)).replace(microsecond=0)
    first: dict = {}

    def first_pipeline() -> None:
        try:
            first["reports"] = run_pipeline(api, since, datetime.now(UTC).replace(microsecond=0), budget.cap(900),
                                            downstream=(("order_routing", "route_orders", "atp_build"),))
        except Exception as exc:  # noqa: BLE001 — reported by the main thread
            first["error"] = exc

    pipeline = threading.Thread(target=first_pipeline, daemon=True)
    pipeline.start()

    def running_task():
        for candidate in patient(api.dag_runs, "atp_build", 3):
            for ti in patient(api.task_instances, "atp_build", candidate["dag_run_id"]):
                # a try with a retry left: the scheduler killed in step 2 may have spent the others
                # (a try killed with it is reset as a new try), and a last try killed fails for good
                if (ti["task_id"] == "dbt_build_atp" and ti["state"] == "running" and ti.get("pid")
                        and ti["try_number"] <= ti.get("max_tries", 0) and alive(ti["pid"])):
                    return candidate, ti
        return None

    run, ti = wait("atp_build's dbt build running", running_task, 600, 0.5)
    os.kill(ti["pid"], signal.SIGKILL)
    note(f"kill -9 task {ti['task_id']} (pid {ti['pid']}, try {ti['try_number']})")
    interrupted = finished(api, "atp_build", run["dag_run_id"], 900)
    tries = {t["task_id"]: t["try_number"] for t in patient(api.task_instances, "atp_build", run["dag_run_id"])}
    assert interrupted["state"] == "success", tries
    assert tries[ti["task_id"]] > ti["try_number"], tries  # it was retried, by Airflow alone
    note(f"interrupted run {interrupted['state']} (tries {tries})")
    pipeline.join(budget.cap(1200))
    if pipeline.is_alive():
        pytest.fail(budget.why("the pipeline over the first orders", 1200))
    assert "error" not in first, first.get("error")
    assert all(r.state == "success" for r in first["reports"]), [(r.dag_id, r.state, r.tasks) for r in first["reports"]]
    note("pipeline over the first orders: " + ", ".join(f"{r.dag_id} {r.state}" for r in first["reports"]))

    # the first orders' parcels: shipped through Clickpost and Magento, then scanned by couriers
    # (webhooks) while the chaos goes on
    shipped = patient(api.trigger, "clickpost_shipments")
    assert finished(api, "clickpost_shipments", shipped["dag_run_id"], 600)["state"] == "success"
    with connect(settings.warehouse_dsn) as conn:
        awbs = [r["awb"] for r in conn.execute("SELECT awb FROM oms.shipment WHERE awb IS NOT NULL ORDER BY awb")]
    assert awbs, "the first orders made no shipment"
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    stream.scans = [{"waybill": awb, "status_code": code, "timestamp": (base + timedelta(minutes=10 * n)).isoformat()}
                    for n, code in enumerate(SCANS) for awb in awbs]
    note(f"{len(awbs)} parcels shipped; {len(stream.scans)} scans to come as webhooks")
    wait("webhooks taken before the outage", lambda: len(stream.delivered) >= 2, 120)

    # 4. Postgres: `oms up` brings it back and heals Airflow; then the pipeline runs, no other command
    from omsdev.stack import postgres

    postmaster = postgres.server_pid(postgres.data_dir(settings))
    os.kill(postmaster, signal.SIGKILL)
    note(f"kill -9 postmaster {postmaster} ({len(stream.delivered)} webhooks taken so far)")
    time.sleep(5)  # the outage: the API answers errors, the ERP and Clickpost keep retrying, Airflow's jobs lose their DB
    up = oms("up", timeout=900)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    note("oms up: " + next((line.strip() for line in up.stderr.splitlines() if line.strip().startswith("airflow")),
                           "?"))
    stream.finish(budget.cap(300))
    note(f"stream stopped: {len(stream.acked)} movements acknowledged, {len(stream.placed)} orders placed, "
         f"{len(stream.delivered)} scans delivered as webhooks ({stream.webhook_attempts} attempts), "
         f"{stream.failures} failed attempts retried")
    ran = oms("pipeline", "run", "--from", since.isoformat(), timeout=1200)
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-3000:]
    note("oms pipeline run: success")
    # tracking after every webhook: the parcels that left are posted to the ERP
    tracked = patient(api.trigger, "clickpost_tracking")
    assert finished(api, "clickpost_tracking", tracked["dag_run_id"], 600)["state"] == "success"
    note("clickpost_tracking: success")

    # the counts
    with connect(settings.warehouse_dsn) as conn:
        ledger = conn.execute("SELECT count(*) AS lines, count(DISTINCT document_id) AS documents"
                              " FROM oms.erp_movement WHERE document_id LIKE 'CHAOS-%%'").fetchone()
        placed = [o["entity_id"] for o in data.orders[:INITIAL_ORDERS]] + stream.placed
        # raw.magento_order keeps each version of an order (entity_id, updated_at): a shipped order
        # lands again once Magento marks it complete; a version landed twice would be a second row
        landed = conn.execute("SELECT count(*) AS rows, count(DISTINCT entity_id) AS orders,"
                              " count(DISTINCT (entity_id, updated_at)) AS versions FROM raw.magento_order"
                              " WHERE entity_id = ANY(%s)", (placed,)).fetchone()
        published = {(r["sku"], r["source_code"]): float(r["quantity"]) for r in conn.execute(
            "SELECT sku, source_code, quantity FROM oms.publish_ledger")}
        shipments = conn.execute(
            "SELECT reference_number, awb, magento_entity_id, jsonb_array_length(line_items) AS lines"
            " FROM oms.shipment WHERE awb = ANY(%s)", (awbs,)).fetchall()
        events = conn.execute("SELECT count(*) AS n, count(DISTINCT (waybill, status_code, status_at)) AS scans"
                              " FROM oms.shipment_event WHERE waybill = ANY(%s) AND status_code = ANY(%s)",
                              (awbs, list(SCANS))).fetchone()
        postings = conn.execute("SELECT count(*) AS n, count(DISTINCT (source_ref, line_key)) AS lines"
                                " FROM oms.sales_posting WHERE posting_type = 'shipment' AND source_ref = ANY(%s)",
                                ([s["reference_number"] for s in shipments],)).fetchone()
    source_items = {(i["sku"], i["source_code"]): float(i["quantity"])
                    for i in httpx.get(f"{settings.magento_url}/_sandbox/source-items", timeout=30).json()}
    clickpost = [s for s in httpx.get(f"{settings.clickpost_url}/_sandbox/shipments", timeout=30).json()
                 if s["waybill"] in awbs]
    tracks = magento_tracks(settings, sorted({s["magento_entity_id"] for s in shipments}))
    counts = {"movements acknowledged": len(stream.acked), "ledger lines": ledger["lines"],
              "ledger documents": ledger["documents"], "orders placed": len(placed),
              "orders landed": landed["orders"], "order versions": landed["versions"], "order rows": landed["rows"],
              "source items published": len(published), "Magento source items": len(source_items),
              "parcels": len(awbs), "Clickpost orders": len(clickpost),
              "Clickpost references": len({s["reference_number"] for s in clickpost}),
              "Magento shipment tracks": len(tracks), "scans sent as webhooks": len(stream.delivered),
              "webhook attempts": stream.webhook_attempts, "scans recorded": events["n"],
              "shipped lines": sum(s["lines"] for s in shipments), "ERP shipment postings": postings["n"],
              "ERP posting lines": postings["lines"]}
    print("\n" + "\n".join(timeline) + "\ncounts: " + json.dumps(counts))
    assert ledger["lines"] == ledger["documents"] == len(stream.acked) == stream.n  # none lost, none twice
    assert landed["orders"] == len(placed) and landed["rows"] == landed["versions"]
    assert published and all(source_items.get(key) == qty for key, qty in published.items())
    assert len(clickpost) == len({s["reference_number"] for s in clickpost}) == len(shipments) == len(awbs)
    assert sorted(tracks) == sorted(awbs)  # one Magento shipment track per parcel
    assert events["n"] == events["scans"] == len(stream.delivered) == len(awbs) * len(SCANS)
    assert postings["n"] == postings["lines"] == sum(s["lines"] for s in shipments)
