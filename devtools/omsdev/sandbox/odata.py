"""Just enough OData v4 for the ERP sandbox: ``$filter`` comparisons joined by ``and``, ``$orderby``.

Supported: ``<field> eq|ne|gt|ge|lt|le <literal>`` where the literal is a bare ISO date/datetime
(``2026-01-01T00:00:00Z``), a number, ``'quoted string'`` (``''`` escapes a quote), ``true``,
``false`` or ``null``. Anything else (``or``, functions, parentheses) is refused with a clear
error, as Business Central refuses what it cannot parse. Rows whose value cannot be compared
with the literal (e.g. a non-numeric inventory against a number) do not match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .common import parse_iso

_CLAUSE = re.compile(r"^(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<op>eq|ne|gt|ge|lt|le)\s+(?P<value>.+)$", re.I)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$")


class ODataError(ValueError):
    pass


@dataclass(frozen=True)
class Clause:
    field: str
    op: str
    value: Any


def _split_and(text: str) -> list[str]:
    """Split on `` and `` outside quotes; refuse ``or`` and parentheses outside quotes."""
    parts, current, quoted, i = [], [], False, 0
    lowered = text.lower()
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        if not quoted:
            if lowered.startswith(" and ", i):
                parts.append("".join(current))
                current, i = [], i + 5
                continue
            if lowered.startswith(" or ", i) or ch in "()":
                raise ODataError(f"unsupported $filter expression (only 'and' of comparisons): {text}")
        current.append(ch)
        i += 1
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _literal(raw: str) -> Any:
    if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
        return raw[1:-1].replace("''", "'")
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if _DATE.match(raw):
        return parse_iso(raw)
    try:
        return float(raw)
    except ValueError as exc:
        raise ODataError(f"cannot parse literal {raw!r} in $filter") from exc


def parse_filter(text: str | None) -> list[Clause]:
    if not text or not text.strip():
        return []
    clauses = []
    for part in _split_and(text.strip()):
        match = _CLAUSE.match(part)
        if not match:
            raise ODataError(f"cannot parse $filter clause {part!r}")
        clauses.append(Clause(match["field"], match["op"].lower(), _literal(match["value"].strip())))
    return clauses


def _coerce(actual: Any, literal: Any) -> tuple[Any, Any] | None:
    """Bring the row value to the literal's type, or None when they cannot be compared."""
    if literal is None or actual is None:
        return (actual, literal)
    if isinstance(literal, datetime):
        try:
            return (parse_iso(str(actual)), literal)
        except ValueError:
            return None
    if isinstance(literal, bool):
        return (actual, literal) if isinstance(actual, bool) else None
    if isinstance(literal, float):
        if isinstance(actual, bool):
            return None
        try:
            return (float(actual), literal)
        except (TypeError, ValueError):
            return None
    return (str(actual), literal)


def matches(row: dict[str, Any], clauses: list[Clause]) -> bool:
    for clause in clauses:
        pair = _coerce(row.get(clause.field), clause.value)
        if pair is None:
            return False
        left, right = pair
        if clause.op in ("eq", "ne"):
            if (left == right) != (clause.op == "eq"):
                return False
            continue
        if left is None or right is None:
            return False
        ok = {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[clause.op]
        if not ok:
            return False
    return True


def sort_rows(rows: list[dict[str, Any]], orderby: str | None) -> list[dict[str, Any]]:
    """``field [asc|desc], …``; missing values sort first; stable, so ties keep insertion order."""
    if not orderby or not orderby.strip():
        return rows
    keys = []
    for part in orderby.split(","):
        tokens = part.split()
        if not tokens or len(tokens) > 2 or (len(tokens) == 2 and tokens[1].lower() not in ("asc", "desc")):
            raise ODataError(f"cannot parse $orderby {orderby!r}")
        keys.append((tokens[0], len(tokens) == 2 and tokens[1].lower() == "desc"))
    out = list(rows)
    for name, descending in reversed(keys):
        out.sort(key=lambda r, name=name: _sort_key(r.get(name)), reverse=descending)
    return out


def _sort_key(value: Any) -> tuple[int, int, Any]:
    if value is None:
        return (0, 0, 0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, 0, value)
    return (1, 1, str(value))
