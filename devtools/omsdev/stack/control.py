"""Starting, stopping and describing the embedded stack."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from oms.settings import Settings
from oms.shipping.config import get_shipping_settings
from oms.warehouse import apply_ddl
from omsdev.stack import postgres, processes
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


def airflow_service(settings: Settings) -> processes.Service:
    admin_password(settings)
    return processes.Service(
        name="airflow",
        command=[str(VENV_BIN / "airflow"), "standalone"],
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
    stopped = [name for name in ("airflow", "api", "sandboxes") if processes.stop(settings.state_dir, name)]
    if settings.pg_managed and postgres.stop(postgres.data_dir(settings)):
        stopped.append("postgres")
    return stopped


def status(settings: Settings) -> list[ServiceStatus]:
    pg_pid = postgres.server_pid(postgres.data_dir(settings))
    rows = [
        ServiceStatus("postgres", pg_pid is not None, pg_pid,
                      f"{settings.pg_host}:{settings.pg_port} (data {postgres.data_dir(settings)})",
                      processes.tree_pss_mib(pg_pid) if pg_pid else 0.0),
    ]
    where = {
        "sandboxes": f"magento {settings.magento_url} · clickpost {settings.clickpost_url} · erp {settings.erp_url}",
        "api": f"{settings.api_url} (docs {settings.api_url}/docs)",
        "airflow": settings.airflow_url,
    }
    for name, place in where.items():
        pid = processes.read_pid(settings.state_dir, name)
        rows.append(ServiceStatus(name, pid is not None, pid, place, processes.tree_pss_mib(pid) if pid else 0.0))
    return rows
