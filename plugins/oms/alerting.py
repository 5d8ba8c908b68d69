"""Failure and retry alerts from Airflow task callbacks: email (SMTP) and/or a webhook.

Every DAG gets these callbacks through `oms.dag_defaults.default_args`. An alert names the DAG,
the task (and map index), the run, its data interval, the try number and the log link, and the
error. Each alert is first recorded in `oms.alert_log` (unique per task instance try and kind), and
sent only when that row is new: a callback that runs twice for one try sends nothing twice.

Settings (environment of the Airflow workers):
  OMS_ALERT_SMTP_HOST, OMS_ALERT_SMTP_PORT (25), OMS_ALERT_SMTP_FROM, OMS_ALERT_SMTP_TO (comma
  separated), optional OMS_ALERT_SMTP_USER / OMS_ALERT_SMTP_PASSWORD / OMS_ALERT_SMTP_STARTTLS=1;
  OMS_ALERT_WEBHOOK_URL (JSON POST; the body has a `text` field, so Slack/Teams-style incoming
  webhooks show it as is); OMS_ALERT_ON_RETRY=1 also *sends* retry alerts (they are always logged).
With no channel configured alerts are still logged, and visible in `GET /v1/pipeline/health`.

Email and webhook go out through oms.integrations.notify, imported only when an alert is sent:
this module's import stays light (stdlib only), as it is imported when the DAG files are parsed.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertSettings:
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "oms-alerts@localhost"
    smtp_to: tuple[str, ...] = ()
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    webhook_url: str | None = None
    send_retries: bool = False

    @classmethod
    def from_env(cls) -> AlertSettings:
        env = os.environ.get
        return cls(
            smtp_host=env("OMS_ALERT_SMTP_HOST") or None,
            smtp_port=int(env("OMS_ALERT_SMTP_PORT") or 25),
            smtp_from=env("OMS_ALERT_SMTP_FROM") or "oms-alerts@localhost",
            smtp_to=tuple(a.strip() for a in (env("OMS_ALERT_SMTP_TO") or "").split(",") if a.strip()),
            smtp_user=env("OMS_ALERT_SMTP_USER") or None,
            smtp_password=env("OMS_ALERT_SMTP_PASSWORD") or None,
            smtp_starttls=(env("OMS_ALERT_SMTP_STARTTLS") or "0").lower() in {"1", "true", "yes"},
            webhook_url=env("OMS_ALERT_WEBHOOK_URL") or None,
            send_retries=(env("OMS_ALERT_ON_RETRY") or "0").lower() in {"1", "true", "yes"},
        )

    @property
    def email_on(self) -> bool:
        return bool(self.smtp_host and self.smtp_to)


@dataclass
class Alert:
    # 'failure' (no tries left) | 'retry' (will be retried) | 'component_down' (see component_alert)
    # | 'condition' (a task found a problem: condition_alert)
    kind: str
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    max_tries: int | None
    data_interval_start: str | None
    data_interval_end: str | None
    log_url: str | None
    error: str | None
    owner: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def task_label(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"

    @property
    def subject(self) -> str:
        if self.kind == "condition":
            return f"[OMS] {self.dag_id}.{self.task_label}: {self.error}"
        if self.kind == "component_down":
            return f"[OMS] Airflow {self.task_id} down: {self.error}"
        verb = "failed" if self.kind == "failure" else "will retry"
        return (f"[OMS] {self.dag_id}.{self.task_label} {verb} (try {self.try_number}"
                f"{f'/{self.max_tries}' if self.max_tries else ''}) · window {self.window}")

    @property
    def window(self) -> str:
        if self.data_interval_start and self.data_interval_end:
            return f"{self.data_interval_start} → {self.data_interval_end}"
        return "none (asset- or manually triggered)"

    def text(self) -> str:
        if self.kind == "component_down":
            return "\n".join([self.subject, f"Component: {self.task_id}", f"Outage:    {self.run_id}",
                              "Nothing is scheduled while it is down.",
                              "Runbook:   docs/runbook.md (Warehouse restarted / Airflow component down)"])
        return "\n".join([
            self.subject,
            f"DAG:      {self.dag_id}",
            f"Task:     {self.task_label}",
            f"Run:      {self.run_id}",
            f"Window:   {self.window}",
            f"Try:      {self.try_number} of {self.max_tries or '?'}",
            f"Owner:    {self.owner or '-'}",
            f"Log:      {self.log_url or '-'}",
            f"Error:    {self.error or '-'}",
            "Runbook:  docs/runbook.md",
        ])

    def payload(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "extra"}, "subject": self.subject, "text": self.text()}


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _last_try(ti: Any, task: Any) -> int | None:
    """The number of the last try: Airflow's `max_tries` counts the retries (a try fails for good
    when its number exceeds it), so the last try is max_tries + 1."""
    max_tries = getattr(ti, "max_tries", None)
    if isinstance(max_tries, int) and max_tries >= 0:
        return max_tries + 1
    retries = getattr(task, "retries", None)
    return retries + 1 if isinstance(retries, int) else None


def alert_from_context(context: dict[str, Any], kind: str) -> Alert:
    """What an Airflow 3 task callback receives, reduced to what a person needs."""
    ti = context["ti"]
    dag_run = context.get("dag_run")
    exception = context.get("exception")
    try:
        log_url = ti.log_url
    except Exception:  # noqa: BLE001 — a link is nice to have, never a reason to lose the alert
        log_url = None
    task = getattr(ti, "task", None)
    map_index = getattr(ti, "map_index", -1)
    return Alert(
        kind=kind,
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        map_index=-1 if map_index is None else int(map_index),
        try_number=int(ti.try_number),
        max_tries=_last_try(ti, task),
        data_interval_start=_iso(getattr(dag_run, "data_interval_start", None) or context.get("data_interval_start")),
        data_interval_end=_iso(getattr(dag_run, "data_interval_end", None) or context.get("data_interval_end")),
        log_url=log_url,
        error=f"{type(exception).__name__}: {exception}"[:2000] if exception else None,
        owner=getattr(task, "owner", None),
    )


# --------------------------------------------------------------------------- channels
# The transports are oms.integrations.notify's (imported when an alert is sent, not at DAG parsing).
def send_email(alert: Alert, settings: AlertSettings) -> None:
    from oms.integrations import notify

    message = EmailMessage()
    message["Subject"] = alert.subject
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(settings.smtp_to)
    message["X-OMS-Alert"] = f"{alert.dag_id}/{alert.task_label}/{alert.run_id}/try-{alert.try_number}/{alert.kind}"
    message.set_content(alert.text())
    notify.smtp_send(message, settings.smtp_host, settings.smtp_port, starttls=settings.smtp_starttls,
                     user=settings.smtp_user, password=settings.smtp_password)


def post_webhook(alert: Alert, settings: AlertSettings) -> None:
    from oms.integrations import notify

    notify.post_webhook(settings.webhook_url, alert.payload())


def component_alert(component: str, last_heartbeat: str | None, reason: str) -> Alert:
    """An Airflow component that stays unhealthy: one alert per outage (keyed by its last heartbeat)."""
    return Alert(kind="component_down", dag_id="airflow", task_id=component,
                 run_id=f"last heartbeat {last_heartbeat or 'never'}", map_index=-1, try_number=0, max_tries=None,
                 data_interval_start=None, data_interval_end=None, log_url=None, error=reason)


# --------------------------------------------------------------------------- the log
def record(dsn: str, alert: Alert, settings: AlertSettings) -> int | None:
    """Insert the alert; the new row's id, or None when this try's alert was already recorded."""
    from oms.warehouse import connect

    with connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO oms.alert_log (kind, dag_id, task_id, run_id, map_index, try_number, max_tries,"
            " data_interval_start, data_interval_end, log_url, error, email_to)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (dag_id, task_id, run_id, map_index, try_number, kind) DO NOTHING RETURNING alert_id",
            (alert.kind, alert.dag_id, alert.task_id, alert.run_id, alert.map_index, alert.try_number,
             alert.max_tries, alert.data_interval_start, alert.data_interval_end, alert.log_url, alert.error,
             list(settings.smtp_to) or None),
        ).fetchone()
    return row["alert_id"] if row else None


def _mark(dsn: str, alert_id: int, column: str | None, error: str | None) -> None:
    from oms.warehouse import connect

    assignments = [f"{column} = now()"] if column else []
    if error:
        assignments.append("delivery_error = concat_ws('; ', delivery_error, %(error)s::text)")
    if assignments:
        with connect(dsn) as conn:
            conn.execute(f"UPDATE oms.alert_log SET {', '.join(assignments)} WHERE alert_id = %(id)s",
                         {"id": alert_id, "error": error})


def dispatch(alert: Alert, settings: AlertSettings | None = None, dsn: str | None = None) -> dict[str, Any]:
    """Record, then send once per channel. Never raises: an alert must not fail the callback chain."""
    settings = settings or AlertSettings.from_env()
    outcome: dict[str, Any] = {"recorded": False, "email": False, "webhook": False, "errors": []}
    alert_id = None
    try:
        if dsn is None:
            from oms.integrations.connections import warehouse_dsn

            dsn = warehouse_dsn()
        alert_id = record(dsn, alert, settings)
        if alert_id is None:
            outcome["duplicate"] = True
            return outcome
        outcome["recorded"] = True
    except Exception as exc:  # noqa: BLE001 — the warehouse may be the thing that is down: still alert
        outcome["errors"].append(f"alert log: {exc}")
        log.warning("could not record the alert in oms.alert_log (%s); sending it anyway", exc)
    if alert.kind == "retry" and not settings.send_retries:
        return outcome
    channels = [("email", "email_sent_at", send_email, settings.email_on),
                ("webhook", "webhook_sent_at", post_webhook, bool(settings.webhook_url))]
    for name, column, send, enabled in channels:
        if not enabled:
            continue
        try:
            send(alert, settings)
            outcome[name] = True
            error = None
        except Exception as exc:  # noqa: BLE001 — one channel down must not stop the other
            error = f"{name}: {type(exc).__name__}: {exc}"[:500]
            outcome["errors"].append(error)
            log.error("alert %s not delivered: %s", name, error)
        if alert_id is not None:
            try:
                _mark(dsn, alert_id, column if outcome[name] else None, error)
            except Exception as exc:  # noqa: BLE001
                log.warning("could not mark the alert's delivery: %s", exc)
    log.info("alert %s: %s", alert.subject, json.dumps(outcome))
    return outcome


def condition_alert(dag_id: str, task_id: str, run_id: str, message: str, **extra: Any) -> Alert:
    """An alert about something a task found (not a task failure); sent once per run."""
    return Alert(kind="condition", dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=-1, try_number=1,
                 max_tries=None, data_interval_start=None, data_interval_end=None, log_url=None, error=message,
                 extra=extra)


# --------------------------------------------------------------------------- the callbacks
def on_task_failure(context: dict[str, Any]) -> None:
    """Airflow `on_failure_callback`: the task failed with no tries left."""
    dispatch(alert_from_context(context, "failure"))


def on_task_retry(context: dict[str, Any]) -> None:
    """Airflow `on_retry_callback`: the try failed, another follows (logged; sent if OMS_ALERT_ON_RETRY)."""
    dispatch(alert_from_context(context, "retry"))
