"""The SMS provider sandbox: auth, validation, idempotency keys, fault switches."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from omsdev.sandbox import sms

KEY = {"Authorization": "Bearer k"}


@pytest.fixture()
def client():
    return TestClient(sms.create_app("k"))


def send(client, key, to="+971501234567", text="hello", headers=KEY):
    return client.post("/v1/messages", json={"to": to, "text": text, "sender": "OMS"},
                       headers={**headers, **({"Idempotency-Key": key} if key else {})})


def test_one_message_per_idempotency_key(client):
    first = send(client, "k1")
    assert first.status_code == 201 and first.json()["status"] == "accepted"
    again = send(client, "k1")
    assert again.status_code == 200 and again.headers["Idempotent-Replay"] == "true"
    assert again.json()["message_id"] == first.json()["message_id"]
    assert send(client, "k1", text="other").status_code == 409
    assert len(client.get("/_sandbox/messages").json()) == 1
    got = client.get(f"/v1/messages/{first.json()['message_id']}", headers=KEY).json()
    assert got["status"] == "delivered"
    assert send(client, "k2", to="+0001234567").status_code == 201
    assert client.get("/_sandbox/messages").json()[-1]["status"] == "undeliverable"


def test_refusals_send_nothing(client):
    assert send(client, "k1", headers={}).status_code == 401
    assert send(client, None).json()["error"]["code"] == "idempotency_key_required"
    assert send(client, "k3", to="0501234567").status_code == 422
    assert send(client, "k4", text="").status_code == 422
    client.post("/_sandbox/faults", json={"error_rate": 1.0, "error_status": 503})
    assert send(client, "k5").status_code == 503
    client.delete("/_sandbox/faults")
    assert client.get("/_sandbox/messages").json() == []
    assert send(client, "k5").status_code == 201
    client.post("/_sandbox/reset")
    assert client.get("/_sandbox/messages").json() == []
