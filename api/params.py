"""Parameter types shared by routes.

Pydantic's lax mode reads a number as a Unix timestamp, so `?to=0` would be 1 January 1970 and
`?updated_since=0.5` half a second after it. A client that sends a number for a date meant
something else: these types take ISO 8601 text only and refuse anything else with a 422.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, WithJsonSchema

# Upper bounds of numeric ids, so that a larger one is a 422 and not a failed cast in Postgres:
# INTEGER_MAX for integer columns; ID_MAX for bigint ids, JSON's safe integer range (what a
# JavaScript client reads exactly; far below bigint's own limit)
INTEGER_MAX = 2**31 - 1
ID_MAX = 2**53 - 1

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})")


def _iso_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError("expected an ISO date, YYYY-MM-DD")
    return value


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        raise ValueError("expected an ISO 8601 time with a time zone, e.g. 2026-03-01T08:00:00Z")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date), WithJsonSchema({"type": "string", "format": "date"})]
IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime),
                        WithJsonSchema({"type": "string", "format": "date-time"})]
