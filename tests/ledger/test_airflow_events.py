"""Accepted ERP movements tell Airflow through its REST API v2 (an asset event that schedules the
Magento publish); rejected-only batches and an unreachable Airflow change nothing for the ERP."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request

from api.airflow_events import AirflowEvents
from api.routes.erp import ERP_MOVEMENTS_URI

from ..net import serve
from .test_erp_ledger_api import line, post_movements


@pytest.fixture(scope="module")
def fake_airflow(tmp_path_factory):
    """Just the three REST API v2 calls the API makes, recording what it received."""
    calls: list[tuple[str, dict]] = []
    app = FastAPI()

    @app.post("/auth/token")
    async def token(request: Request):
        calls.append(("token", await request.json()))
        return {"access_token": "t0k"}

    @app.get("/api/v2/assets")
    async def assets(uri_pattern: str, request: Request):
        calls.append(("assets", {"uri_pattern": uri_pattern, "auth": request.headers.get("authorization")}))
        return {"assets": [{"id": 41, "uri": "oms://other"}, {"id": 42, "uri": ERP_MOVEMENTS_URI}], "total_entries": 2}

    @app.post("/api/v2/assets/events")
    async def events(request: Request):
        calls.append(("event", await request.json()))
        return {"id": 1}

    passwords = tmp_path_factory.mktemp("airflow") / "passwords.json"
    passwords.write_text('{"admin": "s3cret"}')
    with serve(app) as url:
        yield url, str(passwords), calls


@pytest.mark.integration  # imports the DAGs' assets, so Airflow
def test_the_uri_the_api_sends_is_the_dags_asset():
    from oms.assets import ERP_MOVEMENTS

    assert ERP_MOVEMENTS_URI == ERP_MOVEMENTS.uri


def test_accepted_movements_send_one_asset_event(clean_ledger, api_client, ledger_tokens, fake_airflow):
    url, passwords, calls = fake_airflow
    calls.clear()
    api_client.app.state.airflow_events = AirflowEvents(url, password_file=passwords)
    erp = ledger_tokens["erp:write"]
    try:
        assert post_movements(api_client, erp, [line("EVT-1", 1, "receipt", "AE-WH-01", "MV-TEE", 3)]).status_code == 200
        assert [c[0] for c in calls] == ["token", "assets", "event"]
        assert calls[0][1] == {"username": "admin", "password": "s3cret"}
        assert calls[1][1] == {"uri_pattern": ERP_MOVEMENTS_URI, "auth": "Bearer t0k"}
        assert calls[2][1] == {"asset_id": 42, "extra": {"source": "erp_api"}}
        # a replay accepts nothing new: no event; a rejected-only batch: no event
        calls.clear()
        assert post_movements(api_client, erp, [line("EVT-1", 1, "receipt", "AE-WH-01", "MV-TEE", 3)]).status_code == 200
        assert post_movements(api_client, erp, [line("EVT-2", 1, "receipt", "NOPE", "MV-TEE", 3)]).status_code == 207
        assert calls == []
    finally:
        api_client.app.state.airflow_events = AirflowEvents(None)


def test_an_unreachable_airflow_does_not_fail_the_erp(clean_ledger, api_client, ledger_tokens):
    api_client.app.state.airflow_events = AirflowEvents("http://127.0.0.1:9", password_file=None)
    try:
        answer = post_movements(api_client, ledger_tokens["erp:write"], [line("EVT-3", 1, "receipt", "AE-WH-01",
                                                                             "MV-TEE", 1)])
        assert answer.status_code == 200 and answer.json()["accepted"] == 1
    finally:
        api_client.app.state.airflow_events = AirflowEvents(None)



def test_changes_while_an_event_is_in_flight_make_one_event_after_it(tmp_path):
    """A steady stream of changes costs Airflow's api-server at most one event in flight (per asset
    and API worker), not one per change: the changes made meanwhile are one event sent after it."""
    import asyncio
    import threading

    received: list[dict] = []
    gate = threading.Event()
    app = FastAPI()

    @app.post("/auth/token")
    def token():
        return {"access_token": "t0k"}

    @app.get("/api/v2/assets")
    def assets():
        return {"assets": [{"id": 42, "uri": ERP_MOVEMENTS_URI}], "total_entries": 1}

    @app.post("/api/v2/assets/events")
    def event(body: dict):
        received.append(body["extra"])
        gate.wait(30)  # a busy api-server: the first event is still in flight while the stream goes on
        return {"id": len(received)}

    passwords = tmp_path / "passwords.json"
    passwords.write_text('{"admin": "s3cret"}')
    with serve(app) as url:
        events = AirflowEvents(url, password_file=str(passwords))

        async def stream() -> list[dict]:
            first = asyncio.create_task(events.emit(ERP_MOVEMENTS_URI, {"n": 1}))
            while not received:
                await asyncio.sleep(0.05)
            for n in range(2, 6):
                await events.emit(ERP_MOVEMENTS_URI, {"n": n})  # returns at once: due after the one in flight
            in_flight = list(received)
            gate.set()
            await first
            await events.emit(ERP_MOVEMENTS_URI, {"n": 6})  # nothing in flight: sent at once
            return in_flight

        in_flight = asyncio.run(stream())
    assert in_flight == [{"n": 1}]
    assert received == [{"n": 1}, {"n": 5}, {"n": 6}]
