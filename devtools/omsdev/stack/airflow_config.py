"""Airflow 3 configuration for the embedded stack: environment, connections, REST API v2 client.

Connections are environment variables built from the settings (AIRFLOW_CONN_*), so they come
from config, never from clicks; in production the same connection ids point at the real systems.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from oms.integrations.airflow import ADMIN_USER, passwords_file
from oms.settings import Settings


def airflow_home(settings: Settings) -> Path:
    path = settings.state_dir / "airflow"
    path.mkdir(parents=True, exist_ok=True)
    return path


def admin_password(settings: Settings) -> str:
    """The local admin's password, generated once and kept in Simple Auth Manager's passwords file."""
    airflow_home(settings)
    passwords = passwords_file(settings)
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
        # The task and trigger log servers' ports follow the api-server's (8793/8794 for the
        # default 8080), so two stacks on one machine (the demo and a test's) do not collide.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.airflow_port + 713),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.airflow_port + 714),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # A scheduler killed outright leaves the task instances it had queued or was running to the
        # one the supervisor starts in its place, which resets them at this check once the dead
        # one's heartbeat is 30 s old (scheduler_health_check_threshold): every minute, not the
        # default five, so they run again within about 90 s.
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "60",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "GX_ANALYTICS_ENABLED": "False",
        "TQDM_DISABLE": "1",
        "OMS_DBT_TARGET_PATH": str(settings.state_dir / "dbt-target"),
        **connection_env(settings),
    }
