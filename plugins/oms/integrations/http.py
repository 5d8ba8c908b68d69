"""One way to call the outside world: an httpx client with retries for the failures that pass.

Retried: connection errors, timeouts, HTTP 429 (honouring Retry-After) and 5xx. Not retried: other
4xx, which are the caller's to handle (a bad request does not get better by repeating it).
"""

from __future__ import annotations

import logging
from typing import Self

import httpx
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class RetryableHTTPError(httpx.HTTPStatusError):
    """A response whose status says: try again later."""


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RetryableHTTPError | httpx.TransportError)


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, RetryableHTTPError) and exc.response.status_code == 429:
        retry_after = exc.response.headers.get("Retry-After", "")
        if retry_after.isdigit():
            return min(float(retry_after), 30.0)
    return wait_exponential_jitter(initial=0.2, max=10)(state)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("retrying %s after attempt %d: %s", state.fn.__name__ if state.fn else "?", state.attempt_number, exc)


def raise_for_retryable(response: httpx.Response) -> httpx.Response:
    if response.status_code in RETRYABLE_STATUS:
        raise RetryableHTTPError(
            f"{response.request.method} {response.request.url.path} answered {response.status_code}",
            request=response.request,
            response=response,
        )
    return response


def request_with_retries(client: httpx.Client, method: str, url: str, *, attempts: int = 6, **kwargs) -> httpx.Response:
    """Send one request, retrying transient failures; returns the final non-retryable response."""

    @retry(
        retry=retry_if_exception(_is_retryable),
        stop=stop_after_attempt(attempts),
        wait=_wait,
        before_sleep=_log_retry,
        reraise=True,
    )
    def send() -> httpx.Response:
        return raise_for_retryable(client.request(method, url, **kwargs))

    return send()


class HttpClient:
    """Base of the outside systems' clients: one httpx.Client (`_client`), closed on leaving a `with`."""

    _client: httpx.Client

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
