"""What every DAG shares: owner, retries, and the alerting callbacks (oms.alerting)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from oms import secret_guard
from oms.alerting import on_task_failure, on_task_retry


def default_args(owner: str, *, retries: int = 3, retry_delay: timedelta = timedelta(seconds=20),
                 exponential_backoff: bool = True, **extra: Any) -> dict[str, Any]:
    """`default_args` for a DAG: the owning team, retries, and failure/retry alerts with the DAG, task,
    data interval, try number and log link (email and/or webhook, recorded in oms.alert_log).
    Outside the local stack (OMS_ENV) a DAG with default secrets does not load: its import error
    names them (oms.secret_guard)."""
    secret_guard.check(f"the DAGs of {owner}")
    return {
        "owner": owner,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": exponential_backoff,
        "on_failure_callback": on_task_failure,
        "on_retry_callback": on_task_retry,
        **extra,
    }
