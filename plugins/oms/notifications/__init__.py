"""Customer notifications by email and SMS: an outbox keyed on (event, order, channel).

Other parts of the platform call ``enqueue(conn, event, order, payload)`` in their own
transaction when something happens (order confirmed, shipped with its tracking link, out for
delivery, delivered, ready for pickup, return received, refund issued). The row is written once
per (event, order, channel): calling again changes nothing, so each event is sent at most once per
channel whatever retries upstream. The ``notifications_send`` DAG sends what is due
(oms.notifications.sender). docs/notifications.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

EVENTS = ("order_confirmed", "shipped", "out_for_delivery", "delivered", "ready_for_pickup", "return_received",
          "refund_issued")
CHANNELS = ("email", "sms")
LANGUAGES = ("en", "ar")
TEMPLATES = Path(__file__).parent / "templates"


class NotificationError(ValueError):
    """Unknown event or language, or a template missing."""


def template_path(event: str, channel: str, language: str, country: str | None) -> Path:
    """templates/<COUNTRY>/<lang>/<event>.<channel>.txt if present, else templates/<lang>/…"""
    name = f"{event}.{channel}.txt"
    if country:
        specific = TEMPLATES / country.upper() / language / name
        if specific.exists():
            return specific
    general = TEMPLATES / language / name
    if not general.exists():
        raise NotificationError(f"no template {language}/{name}")
    return general


def render(event: str, channel: str, language: str, country: str | None, values: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, body); SMS has an empty subject. Placeholders are $name style (string.Template);
    an unknown placeholder is left as written rather than failing the send."""
    text = Template(template_path(event, channel, language, country).read_text(encoding="utf-8"))
    rendered = text.safe_substitute({k: "" if v is None else str(v) for k, v in values.items()})
    if channel == "email":
        head, _, body = rendered.partition("\n\n")
        return head.removeprefix("Subject:").strip(), body.strip() + "\n"
    return "", rendered.strip()


ORDER_SQL = """
SELECT increment_id, country_code, customer_email, customer_name, ship_to_telephone, ship_to_firstname
FROM marts.fct_orders WHERE increment_id = %s
"""


def _order_facts(conn: psycopg.Connection, order: str | Mapping[str, Any]) -> dict[str, Any]:
    given = {"increment_id": order} if isinstance(order, str) else dict(order)
    if "increment_id" not in given:
        raise NotificationError("order needs an increment_id")
    wanted = ("country_code", "email", "telephone", "name")
    # Facts the caller has (e.g. the ship-to contact of a shipment) need no look-up in the marts.
    row = {} if all(given.get(k) for k in wanted) else conn.execute(ORDER_SQL, (given["increment_id"],)).fetchone() or {}
    return {
        "increment_id": given["increment_id"],
        "country_code": given.get("country_code") or row.get("country_code"),
        "email": given.get("email") or row.get("customer_email"),
        "telephone": given.get("telephone") or row.get("ship_to_telephone"),
        "name": given.get("name") or row.get("ship_to_firstname") or row.get("customer_name") or "",
        "language": given.get("language"),
    }


def enqueue(conn: psycopg.Connection, event: str, order: str | Mapping[str, Any],
            payload: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Queue `event` for `order` on every channel; returns {channel: status}.

    order: the Magento increment_id, or a mapping with increment_id and any of email, telephone,
    name, country_code, language (missing ones are read from marts.fct_orders). payload: the
    template's values (tracking_url, store_name, refund_amount, currency, …) and optionally
    `language` ('en' | 'ar'; default the order's, else 'en').
    Status per channel: pending (the DAG sends it), left_to_magento / off (channel setting),
    no_recipient, or the status of the row already queued for (event, order, channel).
    """
    if event not in EVENTS:
        raise NotificationError(f"unknown event {event!r}; one of {EVENTS}")
    payload = dict(payload or {})
    facts = _order_facts(conn, order)
    language = payload.get("language") or facts["language"] or "en"
    if language not in LANGUAGES:
        raise NotificationError(f"unknown language {language!r}; one of {LANGUAGES}")
    settings = {r["channel"]: r["sender"] for r in conn.execute(
        "SELECT channel, sender FROM oms.notification_setting WHERE event = %s", (event,))}
    out = {}
    for channel in CHANNELS:
        recipient = facts["email"] if channel == "email" else facts["telephone"]
        sender = settings.get(channel, "off")
        status = {"magento": "left_to_magento", "off": "off"}.get(sender) or ("pending" if recipient else "no_recipient")
        key = f"oms-{event}-{facts['increment_id']}-{channel}"
        row = conn.execute(
            """INSERT INTO oms.notification (event, order_increment_id, channel, recipient, country_code, language,
                                             payload, status, idempotency_key)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT ON CONSTRAINT notification_event_order_channel_uq DO NOTHING
               RETURNING status""",
            (event, facts["increment_id"], channel, recipient, facts["country_code"], language,
             Jsonb({"name": facts["name"], **payload}), status, key)).fetchone()
        if row is None:
            row = conn.execute("SELECT status FROM oms.notification WHERE event = %s AND order_increment_id = %s "
                               "AND channel = %s", (event, facts["increment_id"], channel)).fetchone()
        out[channel] = row["status"]
    return out


def magento_notify(conn: psycopg.Connection, event: str, channel: str = "email") -> bool:
    """For the ship / comment calls to Magento: True when the channel setting leaves this event
    to Magento (send `notify: true` / `is_customer_notified: 1`), False when the platform sends it."""
    row = conn.execute("SELECT sender FROM oms.notification_setting WHERE event = %s AND channel = %s",
                       (event, channel)).fetchone()
    return bool(row and row["sender"] == "magento")
