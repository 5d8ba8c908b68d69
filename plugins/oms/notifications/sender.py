"""Sending the notification outbox: SMTP for email, the SMS provider's HTTP API for SMS
(the senders are oms.integrations.notify).

Each send is one attempt row, committed *before* the send and finished after it. What is
guaranteed (docs/notifications.md):

* SMS — exactly once. Every attempt of a notification sends the same ``Idempotency-Key``; the
  provider hands a key to the network once and answers a repeat with the first message. So a
  crash between the provider's answer and our record, or a task retry, re-sends the request and
  gets the same message id back — no second SMS.
* Email — at most once after acceptance. SMTP has no idempotency: once the server has answered
  250 to DATA the message is its responsibility, and a re-send would be a second email. A refusal
  (connection refused, 4xx/5xx to any command) is not acceptance and is retried. An attempt that
  was started but never finished (the worker died, or the connection broke after DATA was sent)
  may or may not have been accepted: it is marked ``unknown`` and NOT re-sent (an operator can
  re-queue it). Every message carries a stable ``Message-ID`` (the notification's key), so a mail
  system or person can also tell duplicates apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import psycopg

from oms.integrations.notify import Ambiguous, Channels, Refused, send_email, send_sms
from oms.notifications import render
from oms.warehouse import connect

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF = timedelta(minutes=1)


def _claim(conn: psycopg.Connection, notification_id: int) -> tuple[dict, int] | None:
    """Lock one due notification and open an attempt on it (committed before any send)."""
    note = conn.execute("SELECT * FROM oms.notification WHERE notification_id = %s AND status = 'pending' "
                        "AND next_attempt_at <= now() FOR UPDATE SKIP LOCKED", (notification_id,)).fetchone()
    if note is None:
        return None
    unfinished = conn.execute("SELECT attempt_no FROM oms.notification_attempt WHERE notification_id = %s "
                              "AND finished_at IS NULL", (notification_id,)).fetchone()
    if unfinished is not None:
        conn.execute("UPDATE oms.notification_attempt SET finished_at = now(), outcome = 'unknown', "
                     "detail = 'the attempt never finished (worker stopped during the send)' "
                     "WHERE notification_id = %s AND attempt_no = %s", (notification_id, unfinished["attempt_no"]))
        if note["channel"] == "email":  # at most once after acceptance: never re-sent blindly
            conn.execute("UPDATE oms.notification SET status = 'unknown', last_error = 'an attempt never finished; "
                         "not re-sent (SMTP has no idempotency)' WHERE notification_id = %s", (notification_id,))
            return None
    attempt = note["attempts"] + 1
    conn.execute("UPDATE oms.notification SET attempts = %s WHERE notification_id = %s", (attempt, notification_id))
    conn.execute("INSERT INTO oms.notification_attempt (notification_id, attempt_no) VALUES (%s, %s)",
                 (notification_id, attempt))
    return note, attempt


def _finish(conn: psycopg.Connection, note: dict, attempt: int, outcome: str, detail: str,
            status: str, provider_ref: str | None = None) -> None:
    conn.execute("UPDATE oms.notification_attempt SET finished_at = now(), outcome = %s, detail = %s "
                 "WHERE notification_id = %s AND attempt_no = %s", (outcome, detail, note["notification_id"], attempt))
    conn.execute(
        """UPDATE oms.notification SET status = %s, provider_ref = coalesce(%s, provider_ref),
                  sent_at = CASE WHEN %s = 'sent' THEN now() ELSE sent_at END,
                  last_error = CASE WHEN %s = 'accepted' THEN NULL ELSE %s END,
                  next_attempt_at = now() + %s * power(2, attempts - 1)
           WHERE notification_id = %s""",
        (status, provider_ref, status, outcome, detail, BACKOFF, note["notification_id"]))


def send_one(dsn: str, notification_id: int, channels: Channels,
             after_send: Callable[[dict], None] | None = None) -> str | None:
    """Send one due notification; returns its new status (None: not due / someone else has it).
    after_send is a test hook called between the provider's answer and the record."""
    with connect(dsn) as conn:
        claimed = _claim(conn, notification_id)
    if claimed is None:
        return None
    note, attempt = claimed
    payload = {**note["payload"], "order": note["order_increment_id"]}
    try:
        subject, body = render(note["event"], note["channel"], note["language"], note["country_code"], payload)
        if note["channel"] == "email":
            ref = send_email(channels, note, subject, body)
        else:
            ref = send_sms(channels, note, body)
    except Refused as exc:
        give_up = exc.permanent or attempt >= MAX_ATTEMPTS
        with connect(dsn) as conn:
            _finish(conn, note, attempt, "failed", str(exc), "failed" if give_up else "pending")
        return "failed" if give_up else "pending"
    except Ambiguous as exc:
        with connect(dsn) as conn:
            _finish(conn, note, attempt, "unknown", str(exc), "unknown")
        return "unknown"
    if after_send is not None:
        after_send(note)
    with connect(dsn) as conn:
        _finish(conn, note, attempt, "accepted", ref, "sent", ref)
    return "sent"


def send_due(dsn: str, channels: Channels | None = None, limit: int = 500,
             after_send: Callable[[dict], None] | None = None) -> dict[str, int]:
    """Send every due notification (oldest first); returns counts per resulting status."""
    channels = channels or Channels.from_settings()
    with connect(dsn) as conn:
        ids = [r["notification_id"] for r in conn.execute(
            "SELECT notification_id FROM oms.notification WHERE status = 'pending' AND next_attempt_at <= now() "
            "ORDER BY notification_id LIMIT %s", (limit,))]
    counts: dict[str, int] = {}
    for notification_id in ids:
        status = send_one(dsn, notification_id, channels, after_send)
        if status is not None:
            counts[status] = counts.get(status, 0) + 1
    return counts
