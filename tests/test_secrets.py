"""Secrets: outside the local stack (OMS_ENV) the API and the DAGs refuse to start with the local
stack's default secrets; API tokens are stored only as hashes; no secret reaches the logs."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from oms import secret_guard, tokens
from oms.settings import SANDBOX_SECRETS
from oms.warehouse import apply_ddl, connect

from .conftest import REPO, fresh_database
from .net import free_port

REAL = {name: f"real-{name.lower()}-0123456789" for name in SANDBOX_SECRETS}


def production(monkeypatch) -> None:
    """OMS_ENV=production, without the test stack's Airflow connections (they hold sandbox keys)."""
    monkeypatch.setenv("OMS_ENV", "production")
    for name in secret_guard.VENDOR_CONNECTIONS:
        monkeypatch.delenv(name, raising=False)


def test_the_local_stack_keeps_its_defaults():
    secret_guard.check("the API", env={}, required=("OMS_CLICKPOST_WEBHOOK_KEY",))
    secret_guard.check("the API", env={"OMS_ENV": "local"}, required=("OMS_CLICKPOST_WEBHOOK_KEY",))


def test_outside_the_local_stack_defaults_are_refused_by_name_never_by_value():
    env = {"OMS_ENV": "production", "OMS_MAGENTO_TOKEN": SANDBOX_SECRETS["OMS_MAGENTO_TOKEN"],
           "AIRFLOW_CONN_OMS_CLICKPOST": json.dumps({"conn_type": "http", "login": "oms",
                                                     "password": SANDBOX_SECRETS["OMS_CLICKPOST_KEY"]}),
           "AIRFLOW_CONN_OMS_ERP": "http://oms:erp-sandbox-key@erp.example:443",
           "OMS_AIRFLOW_PASSWORD": "admin", "OMS_SMS_URL": "https://sms.example"}
    with pytest.raises(secret_guard.DefaultSecrets) as refused:
        secret_guard.check("the API", env=env, required=("OMS_CLICKPOST_WEBHOOK_KEY",))
    message = str(refused.value)
    for name in ("OMS_CLICKPOST_WEBHOOK_KEY", "OMS_MAGENTO_TOKEN", "AIRFLOW_CONN_OMS_CLICKPOST",
                 "AIRFLOW_CONN_OMS_ERP", "OMS_AIRFLOW_PASSWORD", "OMS_SMS_KEY", "OMS_ENV=production"):
        assert name in message, name
    for value in [*SANDBOX_SECRETS.values(), "admin"]:
        assert value not in message
    # the same with real values starts
    real = {"OMS_ENV": "production", **REAL, "OMS_AIRFLOW_PASSWORD": "a-long-real-password",
            "AIRFLOW_CONN_OMS_CLICKPOST": json.dumps({"conn_type": "http", "password": "real-key"})}
    secret_guard.check("the API", env=real, required=("OMS_CLICKPOST_WEBHOOK_KEY",))


def test_a_weak_airflow_admin_password_file_is_refused(tmp_path):
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": "admin"}))
    env = {"OMS_ENV": "staging", **REAL, "OMS_AIRFLOW_PASSWORDS_FILE": str(passwords)}
    with pytest.raises(secret_guard.DefaultSecrets, match="Airflow admin password"):
        secret_guard.check("the API", env=env)
    passwords.write_text(json.dumps({"admin": "a-long-real-password"}))
    secret_guard.check("the API", env=env)


def test_the_api_refuses_to_start_with_the_default_webhook_key(monkeypatch):
    production(monkeypatch)
    monkeypatch.delenv("OMS_CLICKPOST_WEBHOOK_KEY", raising=False)
    with pytest.raises(secret_guard.DefaultSecrets, match="OMS_CLICKPOST_WEBHOOK_KEY"):
        create_app("postgresql://oms@127.0.0.1:1/oms")
    monkeypatch.setenv("OMS_CLICKPOST_WEBHOOK_KEY", SANDBOX_SECRETS["OMS_CLICKPOST_WEBHOOK_KEY"])
    with pytest.raises(secret_guard.DefaultSecrets):
        create_app("postgresql://oms@127.0.0.1:1/oms")
    monkeypatch.setenv("OMS_CLICKPOST_WEBHOOK_KEY", REAL["OMS_CLICKPOST_WEBHOOK_KEY"])
    assert create_app("postgresql://oms@127.0.0.1:1/oms").title


@pytest.mark.integration  # parses a DAG file: imports Airflow
def test_dags_with_default_secrets_do_not_load(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    production(monkeypatch)
    monkeypatch.setenv("OMS_MAGENTO_TOKEN", SANDBOX_SECRETS["OMS_MAGENTO_TOKEN"])
    bag = DagBag(dag_folder=str(REPO / "dags" / "atp_build.py"))
    assert not bag.dags
    (error,) = bag.import_errors.values()
    assert "OMS_MAGENTO_TOKEN" in error and SANDBOX_SECRETS["OMS_MAGENTO_TOKEN"] not in error
    monkeypatch.setenv("OMS_MAGENTO_TOKEN", REAL["OMS_MAGENTO_TOKEN"])
    assert DagBag(dag_folder=str(REPO / "dags" / "atp_build.py")).dags


@pytest.fixture(scope="module")
def dsn(pg_cluster):
    dsn = fresh_database(pg_cluster, "oms_test_secrets")
    apply_ddl(dsn)
    return dsn


def test_tokens_are_stored_only_as_their_hash(dsn):
    with connect(dsn) as conn:
        token = tokens.create_token(conn, "hash-check", ["stock:read"])
        stored = conn.execute("SELECT row_to_json(t)::text AS row, token_sha256 FROM oms.api_token t "
                              "WHERE name = 'hash-check'").fetchone()
    assert token not in stored["row"] and token.removeprefix(tokens.TOKEN_PREFIX) not in stored["row"]
    assert stored["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()


def test_no_secret_reaches_the_logs(dsn, caplog, monkeypatch):
    webhook_key = "log-check-webhook-key-5f2c"
    monkeypatch.setenv("OMS_CLICKPOST_WEBHOOK_KEY", webhook_key)
    with connect(dsn) as conn:
        token = tokens.create_token(conn, "log-check", ["admin"])
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(dsn), raise_server_exceptions=False) as client:
        bearer = {"Authorization": f"Bearer {token}"}
        client.get("/v1/atp/NOPE", headers=bearer)
        client.get("/v1/orders", headers=bearer)  # no marts here: a logged 500
        client.get("/v1/orders", headers={"Authorization": f"Bearer {token}x"})  # a wrong token: 401
        client.post("/v1/webhooks/clickpost", headers={"webhook_key": webhook_key}, content=b"{not json")
        client.post("/v1/webhooks/clickpost", headers={"webhook_key": webhook_key + "x"}, json={})
        client.post("/v1/erp/stock-movements", headers=bearer, json={"lines": [{"token": token}]})
    monkeypatch.setenv("OMS_API_POOL_TIMEOUT", "0.5")
    with TestClient(create_app(f"postgresql://oms:{webhook_key}@127.0.0.1:{free_port()}/oms"),
                    raise_server_exceptions=False) as down:
        assert down.get("/v1/orders", headers=bearer).status_code == 503  # logged as unreachable
    monkeypatch.setenv("OMS_ENV", "production")
    monkeypatch.setenv("OMS_CLICKPOST_WEBHOOK_KEY", SANDBOX_SECRETS["OMS_CLICKPOST_WEBHOOK_KEY"])
    with pytest.raises(secret_guard.DefaultSecrets) as refused:
        create_app(dsn)
    logging.getLogger("oms").error("%s", refused.value)  # as a process manager would log the refusal
    logged = caplog.text
    assert "unhandled error on GET /v1/orders" in logged and "warehouse unreachable" in logged  # it did log
    for secret in (token, token.removeprefix(tokens.TOKEN_PREFIX), webhook_key, *SANDBOX_SECRETS.values()):
        assert secret not in logged, secret
