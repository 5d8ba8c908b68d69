"""Airflow's REST API v2: the platform's only way to Airflow (never its metadata database).

The CLI's `pipeline run` and `backfill`, and the local stack's demo, trigger and follow DAG runs
through it (synchronous calls); the API sends asset events and reads DAG runs through the same
client's async calls (api/airflow_events.py, GET /v1/pipeline/health). Credentials:
OMS_AIRFLOW_USER / OMS_AIRFLOW_PASSWORD, or, on the embedded stack, the Simple Auth Manager's
passwords file under the state folder (read at the first login when `password_file` is given).
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oms.settings import Settings

# httpx is imported where a call needs it: `python -m oms.integrations.airflow`, the Airflow
# containers' healthcheck, runs every 15–30 s and needs only the standard library (importing httpx,
# which brings rich and click along, would be most of its CPU).
if TYPE_CHECKING:
    import httpx

ADMIN_USER = "admin"
PIPELINE_DAGS = ("erp_stock_ingest", "magento_orders_ingest", "atp_build", "magento_stock_publish", "order_routing",
                 "kpi_build")


def passwords_file(settings: Settings):
    """Where the embedded stack's Simple Auth Manager keeps its users' passwords."""
    return settings.state_dir / "airflow" / "simple_auth_manager_passwords.json"


def api_credentials(settings: Settings) -> tuple[str, str]:
    user = os.environ.get("OMS_AIRFLOW_USER", ADMIN_USER)
    password = os.environ.get("OMS_AIRFLOW_PASSWORD")
    if password is None:
        path = passwords_file(settings)
        known = json.loads(path.read_text()) if path.exists() else {}
        password = known.get(user, "")
    return user, password


def airflow_api(settings: Settings) -> AirflowApi:
    user, password = api_credentials(settings)
    return AirflowApi(settings.airflow_url, password, user)


@dataclass
class AirflowApi:
    """A small client of Airflow's REST API v2 (never its metadata database)."""

    base_url: str
    password: str | None = None
    username: str = ADMIN_USER
    password_file: str | None = None   # the passwords file to read `password` from, when not given
    _token: str | None = None
    _asset_ids: dict[str, int] = field(default_factory=dict)
    _client: httpx.Client | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    def _login_body(self) -> dict[str, str]:
        password = self.password
        if password is None:
            password = json.loads(Path(self.password_file).read_text())[self.username] if self.password_file else ""
        return {"username": self.username, "password": password}

    def _sync_client(self) -> httpx.Client:
        """One client for every synchronous call: a client per call would load the CA bundle again
        each time (most of a call's CPU; `oms backfill` polls several calls every 2 s)."""
        if self._client is None:
            import httpx

            self._client = httpx.Client()
        return self._client

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            response = self._sync_client().post(f"{self.base_url}/auth/token", json=self._login_body(), timeout=10)
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    # ------------------------------------------------------------------ async calls (the API's event loop)
    async def _async_headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        if self._token is None:
            response = await client.post(f"{self.base_url}/auth/token", json=self._login_body())
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    async def async_get(self, client: httpx.AsyncClient, path: str, **params: Any) -> Any:
        """GET /api/v2{path}; an expired token logs in once more."""
        for attempt in (1, 2):
            answer = await client.get(f"{self.base_url}/api/v2{path}", headers=await self._async_headers(client),
                                      params=params)
            if answer.status_code == 401 and attempt == 1:
                self._token = None
                continue
            answer.raise_for_status()
            return answer.json()
        raise RuntimeError("unreachable")

    async def async_monitor(self, client: httpx.AsyncClient) -> dict[str, Any]:
        """Airflow's own component health (`/api/v2/monitor/health`, open, no login)."""
        answer = await client.get(f"{self.base_url}/api/v2/monitor/health")
        answer.raise_for_status()
        return answer.json()

    async def emit_asset_event(self, asset_uri: str, extra: dict[str, Any], timeout: float = 5) -> None:
        """Record an event of the asset with this URI (its id is looked up once)."""
        import httpx

        async with httpx.AsyncClient(timeout=timeout) as client:
            headers = await self._async_headers(client)
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

    # ------------------------------------------------------------------ synchronous calls (CLI, local stack)
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._sync_client().request(method, f"{self.base_url}/api/v2{path}", headers=self._headers(),
                                               timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def monitor(self, timeout: float = 5) -> dict[str, Any]:
        """Airflow's own component health (`/api/v2/monitor/health`, open, no login)."""
        return monitor_health(self.base_url, timeout)

    def wait_for_dags(self, dag_ids: tuple[str, ...], timeout: float = 120) -> dict[str, dict[str, Any]]:
        """Wait until Airflow has parsed every one of dag_ids; their entries (`is_paused`, …) by id."""
        deadline = time.monotonic() + timeout
        missing = set(dag_ids)
        while time.monotonic() < deadline:
            known = {d["dag_id"]: d for d in self.request("GET", "/dags", params={"limit": 100})["dags"]}
            missing = set(dag_ids) - set(known)
            if not missing:
                return {dag_id: known[dag_id] for dag_id in dag_ids}
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
        # Airflow 3.3 answers this listing 500 while a run an event created is still queued (the
        # run's start_date is null and fails the response model): seen in `make demo` at the
        # moment atp_build's event queued order_routing. The run starts within seconds, so the
        # listing is asked again a few times before the error stands.
        import httpx

        for attempt in range(ASSET_EVENT_TRIES):
            try:
                return self.request("GET", "/assets/events", params={"limit": 100, **filters})["asset_events"]
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 500 or attempt == ASSET_EVENT_TRIES - 1:
                    raise
                time.sleep(2)
        raise AssertionError("unreachable")

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        import httpx

        try:
            return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")["value"]
        except httpx.HTTPStatusError:
            return None


ASSET_EVENT_TRIES = 30

# --------------------------------------------------------------------------- component health
# The monitor endpoint's names → the components' command names.
MONITORED = {"scheduler": "scheduler", "dag_processor": "dag-processor", "triggerer": "triggerer"}


@dataclass(frozen=True)
class ComponentHealth:
    name: str                    # scheduler | dag-processor | triggerer | metadatabase
    healthy: bool
    status: str | None           # as Airflow says it: healthy, unhealthy, or None (never started)
    last_heartbeat: str | None   # ISO time of the component's latest heartbeat, when it had one

    def down_reason(self) -> str:
        if self.name == "metadatabase":
            return "Airflow's metadata database unreachable"
        since = f"since {self.last_heartbeat[:19].replace('T', ' ')} UTC (last heartbeat)" if self.last_heartbeat \
            else "(no heartbeat ever)"
        return f"{self.name} down {since}"


# What monitor_health raises when the api-server does not answer, answers an HTTP error, or answers
# something that is not JSON.
MONITOR_ERRORS = (OSError, http.client.HTTPException, ValueError)


def monitor_health(base_url: str, timeout: float = 5) -> dict[str, Any]:
    """Airflow's `/api/v2/monitor/health` (open, no login), by the standard library alone (the
    containers' healthcheck calls it); raises one of MONITOR_ERRORS when there is no answer."""
    with urllib.request.urlopen(f"{base_url.rstrip('/')}/api/v2/monitor/health", timeout=timeout) as response:
        return json.load(response)


def _why(exc: Exception) -> str:
    """A short name for a MONITOR_ERRORS failure: the refused or timed-out connection behind urllib's
    wrapper, or the HTTP status."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    reason = getattr(exc, "reason", None)
    return type(reason if isinstance(reason, BaseException) else exc).__name__


def component_health(body: dict[str, Any]) -> list[ComponentHealth]:
    """The monitor endpoint's answer, one entry per component, the scheduler first."""
    found = []
    for key, name in MONITORED.items():
        part = body.get(key) or {}
        found.append(ComponentHealth(name, part.get("status") == "healthy", part.get("status"),
                                     part.get(f"latest_{key}_heartbeat")))
    database = (body.get("metadatabase") or {}).get("status")
    return [*found, ComponentHealth("metadatabase", database == "healthy", database, None)]


def scheduler_down_reason(base_url: str, timeout: float = 5) -> str | None:
    """Why no DAG run would start now (Airflow unreachable, or no live scheduler); None when a scheduler is alive."""
    try:
        body = monitor_health(base_url, timeout)
    except MONITOR_ERRORS as exc:
        return f"Airflow is not reachable at {base_url} ({_why(exc)})"
    found = {c.name: c for c in component_health(body)}
    for name in ("metadatabase", "scheduler"):  # without its database Airflow cannot tell a scheduler's heartbeat
        if not found[name].healthy:
            return found[name].down_reason()
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


def main(argv: list[str] | None = None) -> int:
    """A container healthcheck by Airflow's own monitor endpoint: exit 0 when the named component is
    healthy, 1 when not (or when the api-server does not answer).

    python -m oms.integrations.airflow --component scheduler --url http://airflow-apiserver:8080
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m oms.integrations.airflow")
    parser.add_argument("--component", required=True, choices=[*MONITORED.values(), "api-server"])
    parser.add_argument("--url", required=True, help="The api-server's base URL.")
    args = parser.parse_args(argv)
    try:
        found = {c.name: c for c in component_health(monitor_health(args.url, timeout=5))}
    except MONITOR_ERRORS as exc:
        print(f"Airflow api-server not answering at {args.url}: {exc}")
        return 1
    if args.component == "api-server":
        return 0
    component = found[args.component]
    print(f"{component.name}: {component.status} (last heartbeat {component.last_heartbeat})")
    return 0 if component.healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
