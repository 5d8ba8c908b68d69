"""Verified bearer tokens of this process, for a short while (OMS_TOKEN_CACHE_SECONDS, default
10 s), so a look-up does not ask Postgres who its token belongs to each time.

Kept in step by the change listener of api/atp_cache.py, which also hears the `oms_token`
NOTIFY of every token created, changed or revoked (sql/010_atp_change_notify.sql) and drops that
token at once; while the listener is down the cache is off and every request asks the database.
The same ticket rule as the answer cache: a verification read while its token changed is not kept.
"""

from __future__ import annotations

import os
import time
from typing import Any

MAX_TOKENS = 10_000


class TokenCache:
    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds if seconds is not None else float(os.environ.get("OMS_TOKEN_CACHE_SECONDS", "10"))
        self.enabled = False  # set by the listener: only while it hears every change
        self.entries: dict[str, tuple[float, str, Any]] = {}  # token -> (until, sha256, caller or None)
        self._seq = 0
        self._all_seq = 0
        self._digest_seq: dict[str, int] = {}

    def get(self, token: str) -> tuple[float, str, Any] | None:
        if self.enabled and (hit := self.entries.get(token)) is not None and hit[0] > time.monotonic():
            return hit
        return None

    def begin(self) -> int | None:
        """A ticket to take before reading the token from Postgres; None while the cache is off."""
        return self._seq if self.enabled else None

    def put(self, token: str, digest: str, caller: Any, ticket: int | None) -> None:
        if (ticket is None or not self.enabled or self._all_seq > ticket
                or self._digest_seq.get(digest, 0) > ticket):
            return
        if len(self.entries) >= MAX_TOKENS:  # a flood of made-up tokens: start over
            self.entries = {}
        self.entries[token] = (time.monotonic() + self.seconds, digest, caller)

    def drop(self, digest: str) -> None:
        self._seq += 1
        self._digest_seq[digest] = self._seq
        for token in [t for t, hit in self.entries.items() if hit[1] == digest]:
            del self.entries[token]

    def clear(self) -> None:
        self._seq += 1
        self._all_seq = self._seq
        self._digest_seq = {}
        self.entries = {}
