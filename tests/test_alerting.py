"""Failure alerts: a real SMTP server (aiosmtpd) and a real webhook receiver (HTTP on loopback)
receive what the DAGs' callbacks send; each task instance try alerts once (oms.alert_log).

The last test fails a real DAG run: the ERP sandbox answers 503 to everything, `dag.test()` runs
erp_stock_ingest, the task retries and fails, and the callbacks Airflow runs send the alerts.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from oms.alerting import Alert, AlertSettings, dispatch
from oms.warehouse import apply_ddl, connect

from .conftest import fresh_database
from .net import free_port

DAGS = Path(__file__).resolve().parents[1] / "dags"


@pytest.fixture(scope="module")
def dsn(pg_cluster):
    database = fresh_database(pg_cluster, "oms_test_alerts")
    apply_ddl(database)
    return database


@pytest.fixture(scope="module")
def smtp_server():
    """aiosmtpd on a free loopback port; `messages` holds what it received."""
    from aiosmtpd.controller import Controller

    messages: list[dict] = []

    class Collect:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 — aiosmtpd's hook name
            messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                             "message": message_from_bytes(envelope.original_content, policy=policy.default)})
            return "250 OK"

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, messages
    controller.stop()


@pytest.fixture(scope="module")
def webhook_server():
    """A webhook receiver; answers `status[0]` (200 unless a test says otherwise)."""
    received: list[dict] = []
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 — http.server's hook name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "json": json.loads(body)})
            self.send_response(status[0])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/oms", received, status
    server.shutdown()
    server.server_close()


@pytest.fixture
def channels(smtp_server, webhook_server, dsn):
    port, messages = smtp_server
    url, received, status = webhook_server
    messages.clear()
    received.clear()
    status[0] = 200
    with connect(dsn) as conn:
        conn.execute("TRUNCATE oms.alert_log")
    settings = AlertSettings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="airflow@oms.test",
                             smtp_to=("data-eng@oms.test", "oncall@oms.test"), webhook_url=url)
    return settings, messages, received, status


def an_alert(kind: str = "failure", try_number: int = 3) -> Alert:
    return Alert(kind=kind, dag_id="erp_stock_ingest", task_id="land", run_id="scheduled__2026-03-02T10:15:00+00:00",
                 map_index=-1, try_number=try_number, max_tries=4, data_interval_start="2026-03-02T10:00:00+00:00",
                 data_interval_end="2026-03-02T10:15:00+00:00",
                 log_url="http://airflow.test/dags/erp_stock_ingest/runs/x/tasks/land?try_number=3",
                 error="HTTPStatusError: Server error '503 Service Unavailable'", owner="data-engineering")


def test_an_alert_reaches_email_and_webhook_once_per_try(dsn, channels):
    settings, messages, received, _ = channels
    assert dispatch(an_alert(), settings, dsn) == {"recorded": True, "email": True, "webhook": True, "errors": []}

    (mail,) = messages
    assert mail["from"] == "airflow@oms.test" and mail["to"] == ["data-eng@oms.test", "oncall@oms.test"]
    subject, text = mail["message"]["Subject"], mail["message"].get_content()
    assert subject.startswith("[OMS] erp_stock_ingest.land failed (try 3/4)")
    for needle in ("DAG:      erp_stock_ingest", "Task:     land", "2026-03-02T10:00:00+00:00 → 2026-03-02T10:15:00+00:00",
                   "Try:      3 of 4", "?try_number=3", "503 Service Unavailable", "docs/runbook.md"):
        assert needle in text, needle
    (hook,) = received
    assert hook["path"] == "/hooks/oms"
    assert {k: hook["json"][k] for k in ("dag_id", "task_id", "try_number", "data_interval_end", "log_url")} == {
        "dag_id": "erp_stock_ingest", "task_id": "land", "try_number": 3,
        "data_interval_end": "2026-03-02T10:15:00+00:00",
        "log_url": "http://airflow.test/dags/erp_stock_ingest/runs/x/tasks/land?try_number=3"}
    assert hook["json"]["text"].startswith(subject)

    # the same try again (a callback run twice): recorded once, sent once
    assert dispatch(an_alert(), settings, dsn)["duplicate"] is True
    assert len(messages) == 1 and len(received) == 1
    # the next try is a new alert
    assert dispatch(an_alert(try_number=4), settings, dsn)["recorded"] is True
    assert len(messages) == 2 and len(received) == 2
    with connect(dsn) as conn:
        rows = conn.execute("SELECT try_number, email_to, email_sent_at IS NOT NULL AS mailed,"
                            " webhook_sent_at IS NOT NULL AS posted, delivery_error FROM oms.alert_log"
                            " ORDER BY try_number").fetchall()
    assert rows == [{"try_number": n, "email_to": ["data-eng@oms.test", "oncall@oms.test"], "mailed": True,
                     "posted": True, "delivery_error": None} for n in (3, 4)]


def test_a_refusing_channel_is_recorded_and_does_not_stop_the_other(dsn, channels):
    settings, messages, received, status = channels
    status[0] = 500
    outcome = dispatch(an_alert(), settings, dsn)
    assert (outcome["email"], outcome["webhook"]) == (True, False)
    assert len(messages) == 1 and len(received) == 3  # the webhook was tried three times
    with connect(dsn) as conn:
        row = conn.execute("SELECT email_sent_at, webhook_sent_at, delivery_error FROM oms.alert_log").fetchone()
    assert row["email_sent_at"] is not None and row["webhook_sent_at"] is None
    assert row["delivery_error"].startswith("webhook: HTTPStatusError") and "500" in row["delivery_error"]


def test_retries_are_logged_and_sent_only_when_asked(dsn, channels):
    settings, messages, received, _ = channels
    assert dispatch(an_alert("retry", 1), settings, dsn) == {"recorded": True, "email": False, "webhook": False,
                                                             "errors": []}
    assert messages == [] and received == []
    loud = AlertSettings(**{**settings.__dict__, "send_retries": True})
    assert dispatch(an_alert("retry", 2), loud, dsn)["email"] is True
    assert messages[0]["message"]["Subject"].startswith("[OMS] erp_stock_ingest.land will retry (try 2/4)")


def test_failing_dag_run_alerts_with_its_window_try_and_log_link(settings, dsn, channels, airflow_env, sandboxes,
                                                                 monkeypatch):
    from urllib.parse import urlparse

    from airflow.dag_processing.dagbag import DagBag

    alert_settings, messages, received, _ = channels
    monkeypatch.setenv("OMS_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OMS_ALERT_SMTP_PORT", str(alert_settings.smtp_port))
    monkeypatch.setenv("OMS_ALERT_SMTP_TO", "data-eng@oms.test")
    monkeypatch.setenv("OMS_ALERT_WEBHOOK_URL", alert_settings.webhook_url)
    url = urlparse(dsn)
    monkeypatch.setenv("AIRFLOW_CONN_OMS_WAREHOUSE", json.dumps(
        {"conn_type": "postgres", "host": url.hostname, "port": url.port, "login": url.username,
         "password": url.password or "", "schema": url.path.lstrip("/")}))
    dag = DagBag(dag_folder=str(DAGS)).get_dag("erp_stock_ingest")
    for task in dag.tasks:  # two tries, no wait between them: the callbacks are what is under test
        assert task.on_failure_callback and task.on_retry_callback
        task.retries, task.retry_delay, task.retry_exponential_backoff = 1, timedelta(0), 0

    httpx.post(f"{settings.erp_url}/_sandbox/faults", json={"error_rate": 1.0}, timeout=10).raise_for_status()
    try:
        end = datetime(2026, 3, 3, 9, 15, tzinfo=UTC)
        run = dag.test(logical_date=end)
    finally:
        httpx.delete(f"{settings.erp_url}/_sandbox/faults", timeout=10).raise_for_status()
    assert run.state == "failed"

    with connect(dsn) as conn:
        log = conn.execute("SELECT kind, task_id, run_id, try_number, max_tries, data_interval_start,"
                           " data_interval_end, log_url, error, email_sent_at IS NOT NULL AS mailed"
                           " FROM oms.alert_log ORDER BY try_number").fetchall()
    assert [(r["kind"], r["task_id"], r["try_number"], r["mailed"]) for r in log] == [
        ("retry", "land", 1, False), ("failure", "land", 2, True)]
    failure = log[1]
    assert failure["run_id"] == run.run_id
    assert (failure["data_interval_start"], failure["data_interval_end"]) == (end - timedelta(minutes=15), end)
    assert failure["log_url"].startswith(f"{settings.airflow_url}/dags/erp_stock_ingest/runs/")
    assert failure["log_url"].endswith("/tasks/land?try_number=2")
    assert "503" in failure["error"]
    (mail,) = messages
    assert "erp_stock_ingest.land failed (try 2/2)" in mail["message"]["Subject"]
    assert failure["log_url"] in mail["message"].get_content()
    (hook,) = received
    assert (hook["json"]["run_id"], hook["json"]["kind"], hook["json"]["try_number"]) == (run.run_id, "failure", 2)
