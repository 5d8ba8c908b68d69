"""What the platform refuses, said without HTTP: the kinds of domain error.

Domain code raises a subclass of one of these kinds; callers decide what a kind means for them.
The API maps each kind to one HTTP status in one place (api/errors.py: DOMAIN_STATUS); the CLI
prints the message. An error carries a stable machine `code` (e.g. "unknown_order"), a message
for people, and optional `details` (JSON-able: which line, which state).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the platform refuses. Subclass one of the kinds below, not this."""

    code = "refused"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class NotFound(DomainError):
    """The thing asked about does not exist (an order, a task, a profile version)."""

    code = "not_found"


class Conflict(DomainError):
    """The request contradicts the current state (a replay with other content, a transition the
    state does not allow); asking again unchanged will not help."""

    code = "conflict"


class Refused(DomainError):
    """Well-formed but not acceptable as given (more returned than shipped, an unknown store)."""

    code = "refused"
