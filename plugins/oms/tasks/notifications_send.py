"""The notifications_send DAG's task: every due email and SMS of the notification outbox."""

from __future__ import annotations

from oms.integrations.connections import notification_channels, warehouse_dsn
from oms.notifications.sender import send_due


def send_due_notifications() -> dict[str, int]:
    return send_due(warehouse_dsn(), notification_channels())
