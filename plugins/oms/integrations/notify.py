"""The notification channels: an SMTP server for email, the SMS provider's HTTP API, and the
operators' alert webhook.

Customer notifications (send_email, send_sms): one send each, no retry here: the notification
outbox (oms.notifications.sender) owns attempts and back-off. A send either answers the provider's
reference, or raises Refused (nothing was sent) or, for email, Ambiguous (the message may have been
accepted). SMS carries the notification's key as ``Idempotency-Key``, so a repeat of the same
notification is one SMS.

Operator alerts (oms.alerting): smtp_send and post_webhook, which raise whatever the transport
raises; the alert log records the outcome.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import httpx

from oms.settings import Settings


class Ambiguous(Exception):
    """The send may or may not have happened (email only)."""


class Refused(Exception):
    """The provider refused; nothing was sent. permanent=True: retrying cannot help."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Channels:
    smtp_host: str
    smtp_port: int
    mail_from: str
    sms_url: str
    sms_key: str
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Channels:
        s = settings or Settings()
        return cls(s.smtp_host, s.smtp_port, s.mail_from, s.sms_api_url, s.sms_key)


def send_email(channels: Channels, note: dict, subject: str, body: str) -> str:
    msg = EmailMessage()
    msg["From"] = channels.mail_from
    msg["To"] = note["recipient"]
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{note['idempotency_key']}@oms>"
    msg.set_content(body)
    try:
        smtp = smtplib.SMTP(channels.smtp_host, channels.smtp_port, timeout=channels.timeout)
    except OSError as exc:  # not connected: nothing sent
        raise Refused(f"SMTP connect: {exc}") from exc
    try:
        with smtp:
            try:
                refused = smtp.send_message(msg)
            except smtplib.SMTPRecipientsRefused as exc:
                raise Refused(f"recipient refused: {exc.recipients}", permanent=True) from exc
            except smtplib.SMTPResponseException as exc:  # the server said no: not accepted
                raise Refused(f"SMTP {exc.smtp_code} {exc.smtp_error!r}", permanent=500 <= exc.smtp_code < 600
                              and exc.smtp_code not in (552,)) from exc
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                raise Ambiguous(f"connection lost during the send: {exc}") from exc
            if refused:
                raise Refused(f"recipients refused: {refused}", permanent=True)
    except smtplib.SMTPServerDisconnected:
        pass  # QUIT after acceptance failed: the message was accepted
    return f"accepted {msg['Message-ID']}"


def send_sms(channels: Channels, note: dict, body: str) -> str:
    try:
        response = httpx.post(f"{channels.sms_url}/v1/messages", timeout=channels.timeout,
                              headers={"Authorization": f"Bearer {channels.sms_key}",
                                       "Idempotency-Key": note["idempotency_key"]},
                              json={"to": note["recipient"], "text": body, "sender": "OMS"})
    except httpx.HTTPError as exc:  # the same key makes a re-send safe
        raise Refused(f"SMS provider unreachable: {exc}") from exc
    if response.status_code in (200, 201):
        return response.json()["message_id"]
    permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 409, 429)
    raise Refused(f"SMS provider {response.status_code}: {response.text[:200]}", permanent=permanent)


def smtp_send(message: EmailMessage, host: str, port: int, *, starttls: bool = False, user: str | None = None,
              password: str | None = None, timeout: float = 15) -> None:
    """Send one message through an SMTP server (STARTTLS and login when asked)."""
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        if starttls:
            smtp.starttls()
        if user:
            smtp.login(user, password or "")
        smtp.send_message(message)


def post_webhook(url: str, body: dict[str, Any], attempts: int = 3, timeout: float = 10) -> None:
    """POST a JSON body to an incoming webhook; a transport error or an error status is retried
    (exponential back-off, `attempts` in all), then raised."""
    from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

    @retry(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=0.5, max=4), reraise=True,
           retry=retry_if_exception_type((httpx.TransportError, httpx.HTTPStatusError)))
    def post() -> None:
        response = httpx.post(url, json=body, timeout=timeout)
        response.raise_for_status()

    post()
