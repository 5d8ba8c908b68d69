"""Notifications: each configured event sends one email (seen by a real SMTP server) and one SMS
(the SMS provider sandbox), also when the sending task runs again, crashes between the send and
its record, or meets a provider failure; per-country/language templates; events left to Magento."""

from __future__ import annotations

import httpx
import pytest

from oms import notifications
from oms.integrations.notify import Channels
from oms.notifications import sender
from oms.warehouse import connect

ORDER = "AE000005003"
ARABIC_ORDER = "AE000005005"
PAYLOADS = {
    "order_confirmed": {}, "shipped": {"tracking_url": "https://track.example/AWB1"},
    "out_for_delivery": {"tracking_url": "https://track.example/AWB1"}, "delivered": {},
    "ready_for_pickup": {"store_name": "Dubai Mall"}, "return_received": {"store_name": "Dubai Mall"},
    "refund_issued": {"refund_amount": "63.00", "currency": "AED"},
}


@pytest.fixture()
def sms(sandboxes):
    url = f"http://127.0.0.1:{sandboxes.sms_port}"
    httpx.post(f"{url}/_sandbox/reset", timeout=10).raise_for_status()
    yield url
    httpx.delete(f"{url}/_sandbox/faults", timeout=10)


@pytest.fixture()
def outbox(aftersale_dsn, smtp):
    with connect(aftersale_dsn) as conn:
        conn.execute("TRUNCATE oms.notification_attempt, oms.notification")
        conn.execute("UPDATE oms.notification_setting SET sender = 'platform'")
    smtp.messages.clear()
    return aftersale_dsn


def sent_sms(url) -> list[dict]:
    return httpx.get(f"{url}/_sandbox/messages", timeout=10).json()


def test_every_event_sends_one_email_and_one_sms_even_when_the_task_runs_again(
        outbox, smtp, sms, dagbag, airflow_on_aftersale):
    with connect(outbox) as conn:
        for event, payload in PAYLOADS.items():
            assert notifications.enqueue(conn, event, ORDER, payload) == {"email": "pending", "sms": "pending"}
            # the caller retries its own step: still one row per (event, order, channel)
            assert notifications.enqueue(conn, event, ORDER, payload) == {"email": "pending", "sms": "pending"}
    for _ in range(2):
        assert dagbag.get_dag("notifications_send").test().state == "success"
    assert len(smtp.messages) == len(PAYLOADS)
    assert len(sent_sms(sms)) == len(PAYLOADS)
    subjects = sorted(m["Subject"] for m in smtp.messages)
    assert "Your order AE000005003 is on its way" in subjects
    shipped = next(m for m in smtp.messages if m["Subject"] == "Your order AE000005003 is on its way")
    assert shipped["To"] == "layla@example.com" and "https://track.example/AWB1" in shipped.get_content()
    assert shipped["Message-ID"] == "<oms-shipped-AE000005003-email@oms>"
    refund_sms = next(m for m in sent_sms(sms) if "refunded" in m["text"])
    assert refund_sms["to"] == "+971501234567" and "63.00 AED" in refund_sms["text"]
    with connect(outbox) as conn:
        rows = conn.execute("SELECT status, attempts, provider_ref FROM oms.notification").fetchall()
        attempts = conn.execute("SELECT outcome FROM oms.notification_attempt").fetchall()
    assert {(r["status"], r["attempts"]) for r in rows} == {("sent", 1)} and all(r["provider_ref"] for r in rows)
    assert [a["outcome"] for a in attempts] == ["accepted"] * 2 * len(PAYLOADS)


def test_a_crash_between_the_send_and_its_record_does_not_send_again(outbox, smtp, sms, dagbag, airflow_on_aftersale,
                                                                       settings):
    with connect(outbox) as conn:
        notifications.enqueue(conn, "delivered", ORDER)

    def crash(note):
        raise RuntimeError("worker killed after the provider accepted")

    channels = Channels.from_settings(settings)
    with pytest.raises(RuntimeError):
        sender.send_due(outbox, channels, after_send=crash)
    with pytest.raises(RuntimeError):
        sender.send_due(outbox, channels, after_send=crash)
    assert len(smtp.messages) == 1 and len(sent_sms(sms)) == 1
    # the task is retried: SMS re-sends with its idempotency key (the provider sends nothing new),
    # email is not re-sent (SMTP has no idempotency: at most once after acceptance)
    assert dagbag.get_dag("notifications_send").test().state == "success"
    assert len(smtp.messages) == 1 and len(sent_sms(sms)) == 1
    with connect(outbox) as conn:
        status = {r["channel"]: r["status"] for r in conn.execute("SELECT channel, status FROM oms.notification")}
        outcomes = {(r["channel"], r["attempt_no"]): r["outcome"] for r in conn.execute(
            "SELECT n.channel, a.attempt_no, a.outcome FROM oms.notification_attempt a JOIN oms.notification n "
            "USING (notification_id)")}
    assert status == {"email": "unknown", "sms": "sent"}
    assert outcomes == {("email", 1): "unknown", ("sms", 1): "unknown", ("sms", 2): "accepted"}


def test_provider_failures_are_retried_and_sent_once(outbox, smtp, sms, settings):
    with connect(outbox) as conn:
        notifications.enqueue(conn, "ready_for_pickup", ORDER, {"store_name": "Dubai Mall"})
    httpx.post(f"{sms}/_sandbox/faults", json={"error_rate": 1.0, "error_status": 503}, timeout=10).raise_for_status()
    channels = Channels.from_settings(settings)
    down = Channels(channels.smtp_host, 1, channels.mail_from, channels.sms_url, channels.sms_key)
    assert sender.send_due(outbox, down) == {"pending": 2}
    assert smtp.messages == [] and sent_sms(sms) == []
    httpx.delete(f"{sms}/_sandbox/faults", timeout=10).raise_for_status()
    assert sender.send_due(outbox, channels) == {}       # not due yet: back-off
    with connect(outbox) as conn:
        conn.execute("UPDATE oms.notification SET next_attempt_at = now()")
    assert sender.send_due(outbox, channels) == {"sent": 2}
    assert sender.send_due(outbox, channels) == {}
    assert len(smtp.messages) == 1 and len(sent_sms(sms)) == 1
    with connect(outbox) as conn:
        log = conn.execute("SELECT n.channel, a.outcome, a.detail FROM oms.notification_attempt a "
                           "JOIN oms.notification n USING (notification_id) ORDER BY n.channel, a.attempt_no").fetchall()
    assert [(x["channel"], x["outcome"]) for x in log] == [
        ("email", "failed"), ("email", "accepted"), ("sms", "failed"), ("sms", "accepted")]
    assert "503" in log[2]["detail"]


def test_arabic_and_country_templates_and_events_left_to_magento(outbox, smtp, sms, settings):
    with connect(outbox) as conn:
        conn.execute("UPDATE oms.notification_setting SET sender = 'magento' WHERE event = 'shipped' "
                     "AND channel = 'email'")
        assert notifications.enqueue(conn, "shipped", {"increment_id": ARABIC_ORDER, "language": "ar"},
                                     {"tracking_url": "https://track.example/AWB5"}) == \
            {"email": "left_to_magento", "sms": "pending"}
        assert notifications.magento_notify(conn, "shipped", "email") is True
        assert notifications.magento_notify(conn, "delivered", "email") is False
        notifications.enqueue(conn, "delivered", {"increment_id": ARABIC_ORDER, "language": "ar"})
        with pytest.raises(notifications.NotificationError):
            notifications.enqueue(conn, "lost_in_space", ARABIC_ORDER)
    assert sender.send_due(outbox, Channels.from_settings(settings)) == {"sent": 3}
    (email,) = smtp.messages
    assert email["Subject"] == "تم توصيل طلبك AE000005005" and "مرحباً ليلى" in email.get_content()
    texts = sorted(m["text"] for m in sent_sms(sms))
    assert any("https://track.example/AWB5" in t and "تم شحن طلبك" in t for t in texts)
    # a country's own template wins over the language's
    subject, _ = notifications.render("shipped", "email", "en", "QA", {"order": "QA1", "tracking_url": "u"})
    assert subject == "Your order QA1 is on its way (Qatar)"
    assert notifications.render("shipped", "email", "en", "AE", {"order": "AE1"})[0] == "Your order AE1 is on its way"
