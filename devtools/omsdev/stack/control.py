"""Starting, stopping and describing the embedded stack."""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

from oms.integrations.airflow import MONITOR_ERRORS, ComponentHealth, component_health, monitor_health
from oms.settings import Settings
from oms.shipping.config import get_shipping_settings
from oms.warehouse import apply_ddl
from omsdev.stack import postgres, processes, supervisor
from omsdev.stack.airflow_config import admin_password, airflow_env

VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    where: str
    pss_mib: float = 0.0


def ensure_postgres(settings: Settings) -> list[str]:
    """Init (once), start, create the warehouse and Airflow databases, apply the DDL."""
    if settings.pg_managed:
        data_dir = postgres.data_dir(settings)
        postgres.init_cluster(data_dir, settings.pg_user)
        postgres.start(data_dir, settings.pg_port, settings.pg_host)
    admin = settings.dsn("postgres")
    for database in (settings.warehouse_db, settings.airflow_db):
        postgres.ensure_database(admin, database)
    return apply_ddl(settings.warehouse_dsn)


def sandbox_service(settings: Settings) -> processes.Service:
    return processes.Service(
        name="sandboxes",
        command=[sys.executable, "-m", "omsdev.sandbox.server", "--magento-port", str(settings.magento_port),
                 "--clickpost-port", str(settings.clickpost_port), "--erp-port", str(settings.erp_port),
                 "--sms-port", str(settings.sms_port)],
        env={
            "OMS_MAGENTO_TOKEN": settings.magento_token,
            "OMS_CLICKPOST_USERNAME": settings.clickpost_username,
            "OMS_CLICKPOST_KEY": settings.clickpost_key,
            "OMS_CLICKPOST_WEBHOOK_URL": f"{settings.api_url}/v1/webhooks/clickpost",
            "OMS_CLICKPOST_WEBHOOK_KEY": get_shipping_settings().webhook_key,  # what the API checks
            "OMS_ERP_USERNAME": settings.erp_username,
            "OMS_ERP_PASSWORD": settings.erp_password,
            "OMS_ERP_COMPANY_ID": settings.erp_company_id,
            "OMS_SMS_KEY": settings.sms_key,
        },
        health_url=f"{settings.erp_url}/_sandbox/faults",
        port=settings.erp_port,
    )


def api_service(settings: Settings) -> processes.Service:
    return processes.Service(
        name="api",
        command=[str(VENV_BIN / "uvicorn"), "api.app:create_app", "--factory", "--host", settings.api_host,
                 "--port", str(settings.api_port), "--workers", str(settings.api_workers),
                 "--no-access-log", "--log-level", "warning"],
        env={"OMS_WAREHOUSE_DSN": settings.warehouse_dsn, "OMS_AIRFLOW_URL": settings.airflow_url,
             "OMS_AIRFLOW_PASSWORDS_FILE": str(settings.state_dir / "airflow" / "simple_auth_manager_passwords.json")},
        health_url=f"{settings.api_url}/health",
        port=settings.api_port,
    )


def airflow_service(settings: Settings, standalone: bool = False) -> processes.Service:
    """Airflow's scheduler, dag-processor, triggerer and api-server under the stack's supervisor
    (omsdev.stack.supervisor restarts one that exits); `standalone` = `airflow standalone`, kept
    for the start-up and memory comparison in bench/airflow_stack.py."""
    admin_password(settings)
    command = ([str(VENV_BIN / "airflow"), "standalone"] if standalone
               else [sys.executable, "-m", "omsdev.stack.supervisor", str(settings.state_dir)])
    return processes.Service(
        name="airflow",
        command=command,
        env={**airflow_env(settings), "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin"},
        health_url=f"{settings.airflow_url}/api/v2/monitor/health",
        port=settings.airflow_port,
    )


def services(settings: Settings, with_airflow: bool = True) -> list[processes.Service]:
    chosen = [sandbox_service(settings), api_service(settings)]
    if with_airflow:
        chosen.append(airflow_service(settings))
    return chosen


def start_service(settings: Settings, service: processes.Service, timeout: float) -> tuple[int, bool]:
    """Start the service unless it runs; one that runs but does not answer its health URL is
    stopped and started again. Returns (pid, started_now)."""
    pid = processes.read_pid(settings.state_dir, service.name)
    if pid and service.name != "airflow" and service.health_url and not processes.wait_healthy(service.health_url, 10):
        processes.stop(settings.state_dir, service.name)
    pid, started = processes.start(settings.state_dir, service)
    if service.health_url and not processes.wait_healthy(
        service.health_url, timeout, alive=lambda: processes.read_pid(settings.state_dir, service.name) is not None
    ):
        log = processes.log_path(settings.state_dir, service.name)
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{service.name} did not become healthy at {service.health_url} within {timeout:.0f}s.\n"
                           f"Last lines of {log}:\n{tail}")
    return pid, started


def stop_all(settings: Settings) -> list[str]:
    # Airflow's supervisor gives its components STOP_GRACE, then kills them and what they left
    # behind (task processes run in process groups of their own, out of reach of the group's
    # SIGTERM): it must not be killed itself before it has done so.
    stopped = [name for name in ("airflow", "api", "sandboxes") if processes.stop(
        settings.state_dir, name, timeout=supervisor.STOP_GRACE + 15 if name == "airflow" else 20.0)]
    if settings.pg_managed and postgres.stop(postgres.data_dir(settings)):
        stopped.append("postgres")
    return stopped


# --------------------------------------------------------------------------- Airflow's health
def airflow_components(settings: Settings) -> list[ComponentHealth] | None:
    """Airflow's own view of its components; None when its api-server does not answer."""
    try:
        return component_health(monitor_health(settings.airflow_url, timeout=5))
    except MONITOR_ERRORS:
        return None


def unhealthy_airflow(settings: Settings, since: datetime | None = None) -> list[str]:
    """The supervised components Airflow's monitor endpoint calls unhealthy (api-server when it
    does not answer at all)."""
    found = airflow_components(settings)
    if found is None:
        return ["api-server"]
    # After a database restart a heartbeat from before it proves nothing: Airflow still calls the
    # old job healthy for 30 s while the process behind it may have exited or hung.
    return [c.name for c in found if c.name in supervisor.COMPONENTS and (not c.healthy or (
        since is not None and (c.last_heartbeat is None or datetime.fromisoformat(c.last_heartbeat) < since)))]


# A component just (re)started has no heartbeat yet (the monitor still shows its predecessor's),
# and an api-server takes minutes to answer on a busy 2-core machine: killing it then only starts
# the wait again.
RESTART_GRACE = {"api-server": 600.0}
RESTART_GRACE_DEFAULT = 120.0
# A scheduler asked to stop waits for the tasks its executor runs; one of them may wait on a
# database connection that died with Postgres. Past this it is killed: the supervisor kills what it
# left behind and the scheduler started in its place resets and re-runs those tasks.
TERM_GRACE = 60.0


def start_airflow(settings: Settings, timeout: float = 240, on_restart=None,
                  since: datetime | None = None) -> tuple[int, bool, list[str]]:
    """Start Airflow's supervisor unless it runs, then heal_airflow. Returns (pid, started_now, restarted)."""
    pid, started = processes.start(settings.state_dir, airflow_service(settings))
    return pid, started, heal_airflow(settings, timeout, on_restart, since)


def heal_airflow(settings: Settings, timeout: float = 240, on_restart=None, since: datetime | None = None) -> list[str]:
    """Restart whatever Airflow component is unhealthy by the monitor endpoint, then wait until all
    are healthy. Returns the components restarted. The supervisor itself is started when it is not
    running (start_service)."""
    restarted: list[str] = []
    terminated: dict[int, float] = {}  # pid -> when SIGTERM was sent
    began = datetime.now(UTC).replace(microsecond=0)
    deadline = time.monotonic() + timeout
    while True:
        for pid, sent in list(terminated.items()):
            if not _alive(pid):
                del terminated[pid]
            elif time.monotonic() - sent > TERM_GRACE:
                os.kill(pid, signal.SIGKILL)
                del terminated[pid]
        unhealthy = unhealthy_airflow(settings, since)
        if not unhealthy:
            return restarted
        if time.monotonic() > deadline:
            raise RuntimeError(f"Airflow components still unhealthy after {timeout:.0f}s: {', '.join(unhealthy)} "
                               f"(logs: {processes.log_path(settings.state_dir, 'airflow')})")
        state = supervisor.read_state(settings.state_dir)
        sup_pid = processes.read_pid(settings.state_dir, "airflow")
        if sup_pid is None:
            raise RuntimeError(f"Airflow's supervisor is not running (see {processes.log_path(settings.state_dir, 'airflow')})")
        components = state.get("components", {})
        wake = False
        for name in unhealthy:
            entry = components.get(name, {})
            pid, started = entry.get("pid"), entry.get("started_at")
            if name in restarted or started is None:
                continue  # not started yet (the supervisor migrates the database first)
            # One started before this heal began and unhealthy now is restarted at once (one the
            # supervisor started while the database was down may hang on it); a newer one gets time.
            started_at = datetime.fromisoformat(started)
            age = (datetime.now(UTC) - started_at).total_seconds()
            if started_at >= began and age < RESTART_GRACE.get(name, RESTART_GRACE_DEFAULT):
                continue  # just started: give it time to heartbeat
            if pid and _alive(pid):
                os.kill(pid, signal.SIGTERM)  # the supervisor starts it again once it has exited
                terminated[pid] = time.monotonic()
            else:
                wake = True  # waiting out a backoff: start it now
            restarted.append(name)
            if on_restart:
                on_restart(name)
        if wake and state.get("supervisor_pid") == sup_pid:  # its signal handlers are in place
            os.kill(sup_pid, signal.SIGUSR1)
        time.sleep(2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


# --------------------------------------------------------------------------- status
@dataclass(frozen=True)
class ComponentStatus:
    name: str
    health: str                 # healthy | unhealthy | stopped | unknown
    pid: int | None
    last_heartbeat: str | None  # Airflow's heartbeat for its jobs; our own probe's time otherwise
    where: str = ""
    pss_mib: float = 0.0
    detail: str = ""


def _probe(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code < 500
    except httpx.HTTPError:
        return False


def status(settings: Settings) -> list[ComponentStatus]:
    """Every component with its health: Postgres, the sandboxes, the API and its workers, and
    Airflow's supervisor, scheduler, dag-processor, triggerer and api-server."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    rows: list[ComponentStatus] = []
    data_dir = postgres.data_dir(settings)
    pg_pid = postgres.server_pid(data_dir) if settings.pg_managed else None
    try:
        with psycopg.connect(settings.dsn("postgres"), connect_timeout=3):
            pg_ok = True
    except psycopg.Error:
        pg_ok = False
    rows.append(ComponentStatus(
        "postgres", "healthy" if pg_ok else ("unhealthy" if pg_pid else "stopped"), pg_pid, now if pg_ok else None,
        f"{settings.pg_host}:{settings.pg_port}", processes.tree_pss_mib(pg_pid) if pg_pid else 0.0))

    for service, where in ((sandbox_service(settings), f"ports {settings.magento_port} (magento), "
                            f"{settings.clickpost_port} (clickpost), {settings.erp_port} (erp)"),
                           (api_service(settings), settings.api_url)):
        pid = processes.read_pid(settings.state_dir, service.name)
        ok = pid is not None and _probe(service.health_url)
        rows.append(ComponentStatus(service.name, "healthy" if ok else ("unhealthy" if pid else "stopped"), pid,
                                    now if ok else None, where, processes.tree_pss_mib(pid) if pid else 0.0))
        if service.name == "api" and pid:
            for n, worker in enumerate(_children(pid), 1):
                rows.append(ComponentStatus(f"api worker {n}", "healthy" if _alive(worker) else "stopped", worker,
                                            None, "restarted by uvicorn"))

    sup_pid = processes.read_pid(settings.state_dir, "airflow")
    rows.append(ComponentStatus("airflow supervisor", "healthy" if sup_pid else "stopped", sup_pid, None,
                                settings.airflow_url, processes.tree_pss_mib(sup_pid) if sup_pid else 0.0))
    supervised = supervisor.read_state(settings.state_dir).get("components", {}) if sup_pid else {}
    monitor = {c.name: c for c in airflow_components(settings) or []} if sup_pid else {}
    api_ok = bool(monitor)
    for name in supervisor.COMPONENTS:
        entry = supervised.get(name, {})
        pid = entry.get("pid") if entry.get("pid") and _alive(entry["pid"]) else None
        if name == "api-server":
            health, beat = ("healthy" if api_ok else ("unhealthy" if pid else "stopped")), (now if api_ok else None)
        elif name in monitor:
            health = "healthy" if monitor[name].healthy else ("unhealthy" if pid else "stopped")
            beat = monitor[name].last_heartbeat
        else:
            health, beat = ("unknown" if pid else "stopped"), None
        detail = f"restarts {entry.get('restarts', 0)}"
        if entry.get("last_exit_at"):
            detail += f" (last exit {entry.get('last_exit_code')} at {entry['last_exit_at'][11:19]})"
        rows.append(ComponentStatus(f"  {name}", health, pid, beat, detail if entry else "",
                                    processes.tree_pss_mib(pid) if pid else 0.0))
    if "metadatabase" in monitor:
        rows.append(ComponentStatus("  metadatabase", "healthy" if monitor["metadatabase"].healthy else "unhealthy",
                                    None, None, "as Airflow sees it"))
    return rows
