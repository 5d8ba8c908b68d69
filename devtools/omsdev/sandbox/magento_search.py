"""Magento ``searchCriteria`` and ``fields``: parse the PHP-style query string, apply it to rows in memory.

Semantics follow Magento's collection processor and MySQL (contracts §1.2):
filters within a group are OR-ed, groups are AND-ed; a NULL column satisfies only ``null``
(``neq``/``nin`` never match NULL, as in SQL); string comparison is case-insensitive (MySQL's
default collation); dates are the ``YYYY-MM-DD HH:MM:SS`` UTC strings compared as strings; NULLs
sort first ascending. Keys are accepted in snake_case and camelCase (``filter_groups`` /
``filterGroups``), as Magento's webapi deserializer does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .magento_errors import MagentoError, required

EQUALITY = {"eq", "neq"}
ORDERING = {"gt", "gteq", "moreq", "from", "lt", "lteq", "to"}
SET_CONDITIONS = {"in", "nin", "finset", "nfinset", "like", "nlike", "null", "notnull"}
CONDITIONS = EQUALITY | ORDERING | SET_CONDITIONS

# Input limiting (webapi/validation/*), off by default in Magento (contracts §1.1).
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 300
SYNC_LIST_LIMIT = 20
ASYNC_LIST_LIMIT = 5000

_BRACKET = re.compile(r"\[([^\]]*)\]")


def parse_nested_query(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=v`` → ``{"a": {"b": {"0": {"c": "v"}}}}`` like PHP's ``$_GET``; ``a[]`` appends."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, bracket, rest = key.partition("[")
        parts = [head, *_BRACKET.findall(bracket + rest)] if bracket else [head]
        node = root
        for i, part in enumerate(parts):
            name = part if part != "" else str(len(node))
            if i == len(parts) - 1:
                if not isinstance(node.get(name), dict):  # `searchCriteria=` must not wipe its filters
                    node[name] = value
            else:
                child = node.get(name)
                if not isinstance(child, dict):
                    child = node[name] = {}
                node = child
    return root


def _norm(key: str) -> str:
    return key.replace("_", "").lower()


def lookup(node: Any, name: str) -> Any:
    """Case/underscore-insensitive key lookup: ``condition_type`` finds ``conditionType``."""
    if not isinstance(node, dict):
        return None
    target = _norm(name)
    for key, value in node.items():
        if _norm(key) == target:
            return value
    return None


def ordered_values(node: Any) -> list[Any]:
    """A PHP array arrives as a dict keyed by index strings; order it by numeric index."""
    if isinstance(node, list):
        return node
    if not isinstance(node, dict):
        return [] if node in (None, "") else [node]

    def index(key: str) -> tuple[int, int | str]:
        return (0, int(key)) if key.lstrip("-").isdigit() else (1, key)

    return [node[k] for k in sorted(node, key=index)]


@dataclass(frozen=True)
class Filter:
    field: str
    value: Any
    condition_type: str


@dataclass
class SearchCriteria:
    filter_groups: list[list[Filter]] = field(default_factory=list)
    sort_orders: list[tuple[str, str]] = field(default_factory=list)
    page_size: int | None = None
    current_page: int | None = None

    def echo(self) -> dict[str, Any]:
        """The ``search_criteria`` block Magento returns next to ``items``."""
        out: dict[str, Any] = {
            "filter_groups": [
                {
                    "filters": [
                        {"field": f.field, "value": f.value, "condition_type": f.condition_type} for f in g
                    ]
                }
                for g in self.filter_groups
            ]
        }
        if self.sort_orders:
            out["sort_orders"] = [{"field": f, "direction": d} for f, d in self.sort_orders]
        if self.page_size is not None:
            out["page_size"] = self.page_size
        if self.current_page is not None:
            out["current_page"] = self.current_page
        return out


def _int(value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError as exc:
        raise MagentoError(
            400,
            'The "%value" value\'s type is invalid. The "%type" type was expected. Verify and try again.',
            {"value": value, "type": "int"},
        ) from exc


def parse_search_criteria(
    query: dict[str, Any], *, input_limiting: bool = False, is_required: bool = True
) -> SearchCriteria:
    """Read ``searchCriteria[...]`` out of a nested query dict (see ``parse_nested_query``)."""
    raw = lookup(query, "searchCriteria")
    if raw is None:
        if is_required:
            # Magento's GET list routes declare searchCriteria as a required argument.
            raise required("searchCriteria")
        raw = {}
    criteria = SearchCriteria()
    for group in ordered_values(lookup(raw, "filter_groups")):
        filters = []
        for item in ordered_values(lookup(group, "filters")):
            name = lookup(item, "field")
            if not name:
                raise required("field")
            condition = str(lookup(item, "condition_type") or "eq").lower()
            if condition not in CONDITIONS:
                raise MagentoError(
                    400, 'Invalid condition type "%conditionType".', {"conditionType": condition}
                )
            value = lookup(item, "value")
            filters.append(Filter(str(name), "" if value is None else value, condition))
        criteria.filter_groups.append(filters)
    for sort in ordered_values(lookup(raw, "sort_orders")):
        name = lookup(sort, "field")
        if name:
            direction = str(lookup(sort, "direction") or "ASC").upper()
            criteria.sort_orders.append((str(name), "DESC" if direction == "DESC" else "ASC"))
    page_size = lookup(raw, "page_size")
    current_page = lookup(raw, "current_page")
    criteria.page_size = _int(page_size) if page_size not in (None, "") else None
    criteria.current_page = _int(current_page) if current_page not in (None, "") else None
    if input_limiting:
        if criteria.page_size is None:
            criteria.page_size = DEFAULT_PAGE_SIZE
        elif criteria.page_size > MAX_PAGE_SIZE:
            # Magento rejects rather than clamps (Framework\Webapi\Validator\SearchCriteriaValidator).
            raise MagentoError(400, "Maximum SearchCriteria pageSize is %max", {"max": MAX_PAGE_SIZE})
    return criteria


def _compare(actual: Any, raw: Any) -> int:
    if isinstance(actual, bool):
        actual = int(actual)
    if isinstance(actual, int | float):
        try:
            other = float(raw)
        except (TypeError, ValueError):
            pass
        else:
            return (actual > other) - (actual < other)
    left, right = str(actual).casefold(), str(raw).casefold()
    return (left > right) - (left < right)


def _like(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL)


def _listed(value: Any) -> list[Any]:
    if isinstance(value, dict | list):
        return ordered_values(value)
    return [v.strip() for v in str(value).split(",")]


def matches_filter(row: dict[str, Any], flt: Filter) -> bool:
    actual = row.get(flt.field)
    cond = flt.condition_type
    if cond == "null":
        return actual is None
    if cond == "notnull":
        return actual is not None
    if actual is None:
        return False
    if cond in ("in", "nin"):
        hit = any(_compare(actual, v) == 0 for v in _listed(flt.value))
        return hit if cond == "in" else not hit
    if cond in ("like", "nlike"):
        hit = _like(str(flt.value)).fullmatch(str(actual)) is not None
        return hit if cond == "like" else not hit
    if cond in ("finset", "nfinset"):
        hit = str(flt.value) in str(actual).split(",")
        return hit if cond == "finset" else not hit
    c = _compare(actual, flt.value)
    if cond == "eq":
        return c == 0
    if cond == "neq":
        return c != 0
    if cond == "gt":
        return c > 0
    if cond in ("gteq", "moreq", "from"):
        return c >= 0
    if cond == "lt":
        return c < 0
    return c <= 0  # lteq, to


def matches(row: dict[str, Any], criteria: SearchCriteria) -> bool:
    return all(any(matches_filter(row, f) for f in group) for group in criteria.filter_groups if group)


def _sort_key(value: Any) -> tuple[int, int, Any]:
    if value is None:
        return (0, 0, 0)
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int | float):
        return (1, 0, value)
    return (1, 1, str(value).casefold())


def search(
    rows: Iterable[dict[str, Any]], criteria: SearchCriteria, *, repeat_last_page: bool = True
) -> tuple[list[dict[str, Any]], int]:
    """Filter, sort, page. Returns (page rows, total_count before paging).

    ``repeat_last_page`` reproduces older Magento (magento/magento2#3787, #26986): the collection
    clamps ``currentPage`` to the last page, so paging past the end returns the last page again.
    """
    selected = [r for r in rows if matches(r, criteria)]
    for name, direction in reversed(criteria.sort_orders):
        selected.sort(key=lambda r, name=name: _sort_key(r.get(name)), reverse=direction == "DESC")
    total = len(selected)
    size = criteria.page_size
    if not size:
        return selected, total
    page = max(criteria.current_page or 1, 1)
    if repeat_last_page:
        page = min(page, max(1, math.ceil(total / size)))
    start = (page - 1) * size
    return selected[start : start + size], total


def parse_fields(spec: str) -> dict[str, Any]:
    """``items[increment_id,entity_id],total_count`` → {"items": {"increment_id": None, ...}, ...}."""
    pos = 0

    def parse_list() -> dict[str, Any]:
        nonlocal pos
        out: dict[str, Any] = {}
        while pos < len(spec):
            start = pos
            while pos < len(spec) and spec[pos] not in ",[]":
                pos += 1
            name = spec[start:pos].strip()
            sub = None
            if pos < len(spec) and spec[pos] == "[":
                pos += 1
                sub = parse_list()
                pos += 1  # the closing bracket
            if name:
                out[name] = sub
            if pos < len(spec) and spec[pos] == ",":
                pos += 1
                continue
            break
        return out

    return parse_list()


def apply_fields(data: Any, spec: dict[str, Any]) -> Any:
    if isinstance(data, list):
        return [apply_fields(item, spec) for item in data]
    if not isinstance(data, dict):
        return data
    return {k: data[k] if sub is None else apply_fields(data[k], sub) for k, sub in spec.items() if k in data}


def check_list_limit(items: list[Any], type_name: str, limit: int | None) -> None:
    """Input limiting caps each list argument (``webapi/validation/complex_array_limit``)."""
    if limit is not None and len(items) > limit:
        raise MagentoError(400, 'Maximum items of type "%type" is %max', {"type": type_name, "max": limit})
