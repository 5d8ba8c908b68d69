"""Settings of the embedded stack, from OMS_* environment variables with local defaults.

One object answers "where does everything run": the CLI, the DAGs (through Airflow connections
built from it), the API and the tests all read it, so a port is configured in one place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


# The secrets the local stack ships with (its sandboxes accept them): fine on a laptop, refused
# elsewhere (oms.secret_guard, OMS_ENV).
SANDBOX_SECRETS = {
    "OMS_CLICKPOST_WEBHOOK_KEY": "clickpost-webhook-key",
    "OMS_MAGENTO_TOKEN": "magento-sandbox-token",
    "OMS_CLICKPOST_KEY": "clickpost-sandbox-key",
    "OMS_ERP_PASSWORD": "erp-sandbox-key",
    "OMS_SMS_KEY": "sms-sandbox-key",
}


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class Settings:
    repo_root: Path = REPO_ROOT
    state_dir: Path = field(default_factory=lambda: Path(_env("OMS_STATE_DIR", str(REPO_ROOT / ".oms"))))
    pg_host: str = field(default_factory=lambda: _env("OMS_PG_HOST", "127.0.0.1"))
    pg_port: int = field(default_factory=lambda: _env_int("OMS_PG_PORT", 5544))
    pg_user: str = field(default_factory=lambda: _env("OMS_PG_USER", "oms"))
    pg_password: str = field(default_factory=lambda: _env("OMS_PG_PASSWORD", ""))
    # False when the cluster is someone else's (compose, a managed server): then `oms` only creates
    # databases and applies DDL, and never runs initdb/pg_ctl.
    pg_managed: bool = field(default_factory=lambda: _env("OMS_PG_MANAGED", "1") not in {"0", "false", "no"})
    warehouse_db: str = field(default_factory=lambda: _env("OMS_WAREHOUSE_DB", "oms"))
    airflow_db: str = field(default_factory=lambda: _env("OMS_AIRFLOW_DB", "airflow"))
    api_host: str = field(default_factory=lambda: _env("OMS_API_HOST", "127.0.0.1"))
    api_port: int = field(default_factory=lambda: _env_int("OMS_API_PORT", 8000))
    api_workers: int = field(default_factory=lambda: _env_int("OMS_API_WORKERS", 1))
    airflow_port: int = field(default_factory=lambda: _env_int("OMS_AIRFLOW_PORT", 8080))
    magento_port: int = field(default_factory=lambda: _env_int("OMS_MAGENTO_PORT", 8101))
    clickpost_port: int = field(default_factory=lambda: _env_int("OMS_CLICKPOST_PORT", 8102))
    erp_port: int = field(default_factory=lambda: _env_int("OMS_ERP_PORT", 8103))
    sms_port: int = field(default_factory=lambda: _env_int("OMS_SMS_PORT", 8104))
    sms_key: str = field(default_factory=lambda: _env("OMS_SMS_KEY", SANDBOX_SECRETS["OMS_SMS_KEY"]))
    # notifications (docs/notifications.md): the SMS provider's base URL and the SMTP relay
    sms_url: str = field(default_factory=lambda: _env("OMS_SMS_URL", ""))
    smtp_host: str = field(default_factory=lambda: _env("OMS_SMTP_HOST", "127.0.0.1"))
    smtp_port: int = field(default_factory=lambda: _env_int("OMS_SMTP_PORT", 8025))
    mail_from: str = field(default_factory=lambda: _env("OMS_MAIL_FROM", "orders@oms.example"))
    magento_token: str = field(default_factory=lambda: _env("OMS_MAGENTO_TOKEN", SANDBOX_SECRETS["OMS_MAGENTO_TOKEN"]))
    clickpost_username: str = field(default_factory=lambda: _env("OMS_CLICKPOST_USERNAME", "oms"))
    clickpost_key: str = field(default_factory=lambda: _env("OMS_CLICKPOST_KEY", SANDBOX_SECRETS["OMS_CLICKPOST_KEY"]))
    erp_username: str = field(default_factory=lambda: _env("OMS_ERP_USERNAME", "oms"))
    erp_password: str = field(default_factory=lambda: _env("OMS_ERP_PASSWORD", SANDBOX_SECRETS["OMS_ERP_PASSWORD"]))
    erp_company_id: str = field(default_factory=lambda: _env("OMS_ERP_COMPANY_ID", "5d115c9c-44e3-ea11-bb43-000d3a2feca1"))
    # Magento order ingestion: each window is pulled from this many minutes before its start (orders
    # stamped in the same second as a page boundary, late commits); landing is keyed, so the
    # overlap costs requests, never duplicates.
    magento_overlap_minutes: int = field(default_factory=lambda: _env_int("OMS_MAGENTO_OVERLAP_MINUTES", 10))
    magento_page_size: int = field(default_factory=lambda: _env_int("OMS_MAGENTO_PAGE_SIZE", 100))
    # An order still in pending_payment / payment_review this long after its last change becomes a
    # 'payment_not_completed' exception (Magento itself cancels pending-payment orders after 480 min).
    payment_timeout_minutes: int = field(default_factory=lambda: _env_int("OMS_PAYMENT_TIMEOUT_MINUTES", 60))

    def dsn(self, database: str | None = None) -> str:
        auth = self.pg_user + (f":{self.pg_password}" if self.pg_password else "")
        return f"postgresql://{auth}@{self.pg_host}:{self.pg_port}/{database or self.warehouse_db}"

    @property
    def warehouse_dsn(self) -> str:
        return self.dsn(self.warehouse_db)

    @property
    def airflow_sqlalchemy_conn(self) -> str:
        return self.dsn(self.airflow_db).replace("postgresql://", "postgresql+psycopg2://", 1)

    @property
    def magento_url(self) -> str:
        return f"http://127.0.0.1:{self.magento_port}"

    @property
    def clickpost_url(self) -> str:
        return f"http://127.0.0.1:{self.clickpost_port}"

    @property
    def erp_url(self) -> str:
        return f"http://127.0.0.1:{self.erp_port}"

    @property
    def sms_api_url(self) -> str:
        return self.sms_url or f"http://127.0.0.1:{self.sms_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow_port}"


def get_settings() -> Settings:
    return Settings()
