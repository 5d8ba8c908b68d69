"""Airflow 3 configuration for the embedded stack: environment, connections, REST API v2 client.

Connections are environment variables built from the settings (AIRFLOW_CONN_*), so they come
from config, never from clicks; in production the same connection ids point at the real systems.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from oms.settings import Settings

ADMIN_USER = "admin"
PIPELINE_DAGS = ("erp_stock_ingest", "magento_orders_ingest", "atp_build", "magento_stock_publish", "order_routing",
                 "kpi_build")


def airflow_home(settings: Settings) -> Path:
    path = settings.state_dir / "airflow"
    path.mkdir(parents=True, exist_ok=True)
    return path


def admin_password(settings: Settings) -> str:
    """The local admin's password, generated once and kept in Simple Auth Manager's passwords file."""
    passwords = airflow_home(settings) / "simple_auth_manager_passwords.json"
    if passwords.exists():
        known = json.loads(passwords.read_text())
        if known.get(ADMIN_USER):
            return known[ADMIN_USER]
    password = secrets.token_urlsafe(12)
    passwords.write_text(json.dumps({ADMIN_USER: password}))
    return password


def connection_env(settings: Settings) -> dict[str, str]:
    def http(port: int, login: str, password: str, **extra: Any) -> str:
        return json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": port, "login": login, "password": password,
             "extra": {"scheme": "http", **extra}}
        )

    return {
        "AIRFLOW_CONN_OMS_WAREHOUSE": json.dumps(
            {"conn_type": "postgres", "host": settings.pg_host, "port": settings.pg_port,
             "login": settings.pg_user, "password": settings.pg_password, "schema": settings.warehouse_db}
        ),
        "AIRFLOW_CONN_OMS_ERP": http(settings.erp_port, settings.erp_username, settings.erp_password,
                                     company_id=settings.erp_company_id),
        "AIRFLOW_CONN_OMS_MAGENTO": http(settings.magento_port, "", settings.magento_token),
        "AIRFLOW_CONN_OMS_CLICKPOST": http(settings.clickpost_port, settings.clickpost_username,
                                           settings.clickpost_key),
        "AIRFLOW_CONN_OMS_SMS": http(settings.sms_port, "", settings.sms_key),
        "AIRFLOW_CONN_OMS_SMTP": json.dumps({"conn_type": "smtp", "host": settings.smtp_host,
                                             "port": settings.smtp_port, "extra": {"from": settings.mail_from}}),
    }


def airflow_env(settings: Settings) -> dict[str, str]:
    home = airflow_home(settings)
    secret_file = home / "secret_key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_hex(16))
    secret = secret_file.read_text().strip()
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.repo_root / "dags"),
        # Not plugins/: our package is installed in the venv, and Airflow's plugin manager would
        # import every module of it as a top-level name (oms/http.py shadowing stdlib http…).
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # The default of 32 idle workers costs memory and shows nothing on 2 cores.
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "simple_auth_manager_passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": settings.airflow_sqlalchemy_conn,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": settings.airflow_url,
        "AIRFLOW__API__SECRET_KEY": secret,
        "AIRFLOW__API_AUTH__JWT_SECRET": secret,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.airflow_url}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "GX_ANALYTICS_ENABLED": "False",
        "TQDM_DISABLE": "1",
        "OMS_DBT_TARGET_PATH": str(settings.state_dir / "dbt-target"),
        **connection_env(settings),
    }


@dataclass
class AirflowApi:
    """A small client of Airflow's REST API v2 (never its metadata database)."""

    base_url: str
    password: str
    username: str = ADMIN_USER
    _token: str | None = None

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            response = httpx.post(f"{self.base_url}/auth/token", json={"username": self.username, "password": self.password}, timeout=10)
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.base_url}/api/v2{path}", headers=self._headers(), timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def wait_for_dags(self, dag_ids: tuple[str, ...], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        missing = set(dag_ids)
        while time.monotonic() < deadline:
            known = {d["dag_id"] for d in self.request("GET", "/dags", params={"limit": 100})["dags"]}
            missing = set(dag_ids) - known
            if not missing:
                return
            time.sleep(1)
        raise TimeoutError(f"Airflow has not parsed these DAGs yet: {sorted(missing)} (see `oms status`, logs)")

    def import_errors(self) -> list[dict[str, Any]]:
        return self.request("GET", "/importErrors")["import_errors"]

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, **interval: str) -> dict[str, Any]:
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}, **interval})

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def dag_runs(self, dag_id: str, limit: int = 20) -> list[dict[str, Any]]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": limit, "order_by": "-run_after"})["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def asset_events(self, **filters: str) -> list[dict[str, Any]]:
        return self.request("GET", "/assets/events", params={"limit": 100, **filters})["asset_events"]

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        try:
            return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")["value"]
        except httpx.HTTPStatusError:
            return None


# Time-windowed ingestion DAGs: what `oms backfill --all` covers after an outage.
WINDOWED_DAGS = ("erp_stock_ingest", "magento_orders_ingest")


def backfill_dry_run(api: AirflowApi, dag_id: str, start: str, end: str, reprocess: str) -> list[str]:
    """The logical dates of the runs a backfill would create (Airflow's own dry run)."""
    body = api.request("POST", "/backfills/dry_run", json={"dag_id": dag_id, "from_date": start, "to_date": end,
                                                           "reprocess_behavior": reprocess})
    return [b["logical_date"] for b in body["backfills"]]


def backfill_create(api: AirflowApi, dag_id: str, start: str, end: str, reprocess: str,
                    max_active_runs: int) -> dict[str, Any]:
    return api.request("POST", "/backfills", json={"dag_id": dag_id, "from_date": start, "to_date": end,
                                                   "reprocess_behavior": reprocess,
                                                   "max_active_runs": max_active_runs})


def backfill_get(api: AirflowApi, backfill_id: int) -> dict[str, Any]:
    return api.request("GET", f"/backfills/{backfill_id}")


def backfill_runs(api: AirflowApi, dag_id: str, start: str, end: str) -> list[dict[str, Any]]:
    return api.request("GET", f"/dags/{dag_id}/dagRuns", params={
        "run_type": "backfill", "logical_date_gte": start, "logical_date_lte": end, "limit": 1000})["dag_runs"]


TERMINAL_RUN_STATES = frozenset({"success", "failed"})


def _same_moment(a: str, b: str) -> bool:
    from datetime import datetime

    def parse(value: str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    return parse(a) == parse(b)


@dataclass
class BackfillProgress:
    dag_id: str
    planned: int
    states: dict[str, str]  # logical date → state, for the planned runs Airflow has created so far
    completed: bool          # Airflow marked the backfill complete

    @property
    def done(self) -> int:
        return sum(state in TERMINAL_RUN_STATES for state in self.states.values())

    @property
    def failed(self) -> int:
        return sum(state == "failed" for state in self.states.values())

    @property
    def finished(self) -> bool:
        return self.completed or (len(self.states) >= self.planned and self.done == len(self.states))


def backfill_progress(api: AirflowApi, backfill: dict[str, Any], planned: list[str]) -> BackfillProgress:
    """Where one backfill stands: its planned runs' states (runs of earlier backfills of the same
    range are not counted) and whether Airflow has completed it."""
    dag_id = backfill["dag_id"]
    runs = backfill_runs(api, dag_id, backfill["from_date"], backfill["to_date"]) if planned else []
    states = {}
    for logical_date in planned:
        match = next((r for r in runs if r.get("logical_date") and _same_moment(r["logical_date"], logical_date)), None)
        if match is not None:
            states[logical_date] = match["state"]
    completed = backfill_get(api, backfill["id"]).get("completed_at") is not None
    return BackfillProgress(dag_id, len(planned), states, completed)
