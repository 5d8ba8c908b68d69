"""Fulfilment KPIs for GET /v1/kpis and the KPI page, read from the KPI marts (dbt/models/marts/kpis).

The marts hold additive measures only; every rate here is computed after summing over the
filter (a ratio of sums, never an average of daily ratios), so a country's figure over a week is
the same whether it is asked for directly or summed from its stores.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row

MEASURES = ("orders", "lines", "units_ordered", "routed_orders", "allocated_orders", "minutes_to_allocate_sum",
            "split_orders", "click_and_collect_orders", "canceled_orders", "oversold_orders", "rerouted_orders",
            "shipments", "units_allocated", "ship_from_store_shipments", "shipping_cost",
            "dispatched_orders", "hours_to_dispatch_sum", "delivered_orders", "hours_to_deliver_sum",
            "manifested_shipments", "dispatched_shipments", "dispatched_on_time_shipments", "delivered_shipments",
            "delivered_on_time_shipments", "ndr_shipments", "rto_shipments")

_SUMS = ",\n    ".join(f"coalesce(sum(d.{m}), 0) AS {m}" for m in MEASURES)
_FILTER = ("d.order_date BETWEEN %(date_from)s AND %(date_to)s "
           "AND (%(country)s::text IS NULL OR d.country_code = %(country)s)")


def _daily(group_by: str, extra_select: str = "") -> str:
    return (f"SELECT {group_by}{extra_select},\n    {_SUMS}\nFROM marts.fct_fulfilment_daily d\n"
            f"LEFT JOIN marts.dim_locations l ON l.store_id = d.location_id\n"
            f"WHERE {_FILTER}\nGROUP BY {group_by}\nORDER BY {group_by}")


TOTALS_SQL = f"SELECT {_SUMS}\nFROM marts.fct_fulfilment_daily d\nWHERE {_FILTER}"
TREND_SQL = _daily("d.order_date")
COUNTRY_SQL = _daily("d.country_code")
LOCATION_SQL = _daily("d.country_code, d.location_id, l.location_type, l.location_name")
COURIER_SQL = _daily("d.country_code, d.courier")

ACCURACY_SQL = """
SELECT kpi_date, sum(orders) AS orders, sum(oversold_orders) AS oversold_orders,
       sum(drift_findings) AS drift_findings, sum(drift_oversell_items) AS drift_oversell_items,
       sum(drift_undersell_items) AS drift_undersell_items, sum(units_withheld) AS units_withheld,
       sum(published_movements) AS published_movements,
       max(publish_lag_p50_seconds) AS publish_lag_p50_seconds, max(publish_lag_p95_seconds) AS publish_lag_p95_seconds
FROM marts.fct_promise_accuracy_daily
WHERE kpi_date BETWEEN %(date_from)s AND %(date_to)s AND (%(country)s::text IS NULL OR country_code = %(country)s)
GROUP BY kpi_date ORDER BY kpi_date
"""

QUALITY_SQL = """
SELECT source_feed, reason, sum(findings) AS findings, sum(open_findings) AS open_findings
FROM marts.fct_data_quality_daily
WHERE kpi_date BETWEEN %(date_from)s AND %(date_to)s
GROUP BY source_feed, reason ORDER BY sum(findings) DESC, source_feed, reason
"""

COUNTRIES_SQL = "SELECT DISTINCT country_code FROM marts.fct_fulfilment_daily ORDER BY 1"
# The default range: every day any KPI mart has (data-quality findings are dated when found, which
# may be after the last order).
RANGE_SQL = """
SELECT min(d), max(d) FROM (
    SELECT order_date AS d FROM marts.fct_fulfilment_daily
    UNION ALL SELECT kpi_date FROM marts.fct_promise_accuracy_daily
    UNION ALL SELECT kpi_date FROM marts.fct_data_quality_daily) days
"""


def _ratio(numerator: Any, denominator: Any, scale: float = 1.0, digits: int = 4) -> float | None:
    if not denominator:
        return None
    return round(float(numerator) * scale / float(denominator), digits)


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def rates(row: dict[str, Any]) -> dict[str, Any]:
    """The additive measures as plain numbers, plus the rates computed from them."""
    out = {k: _number(v) for k, v in row.items()}
    out.update(
        fill_rate=_ratio(row["units_allocated"], row["units_ordered"]),
        avg_minutes_to_allocate=_ratio(row["minutes_to_allocate_sum"], row["allocated_orders"], digits=2),
        split_rate=_ratio(row["split_orders"], row["orders"]),
        ship_from_store_share=_ratio(row["ship_from_store_shipments"], row["shipments"]),
        click_and_collect_share=_ratio(row["click_and_collect_orders"], row["orders"]),
        cancel_rate=_ratio(row["canceled_orders"], row["orders"]),
        oversell_per_1k_orders=_ratio(row["oversold_orders"], row["orders"], scale=1000, digits=2),
        reroute_rate=_ratio(row["rerouted_orders"], row["orders"]),
        cost_per_shipment=_ratio(row["shipping_cost"], row["shipments"], digits=2),
        shipments_per_order=_ratio(row["shipments"], row["allocated_orders"], digits=3),
        avg_hours_to_dispatch=_ratio(row["hours_to_dispatch_sum"], row["dispatched_orders"], digits=2),
        avg_hours_to_deliver=_ratio(row["hours_to_deliver_sum"], row["delivered_orders"], digits=2),
        on_time_dispatch_rate=_ratio(row["dispatched_on_time_shipments"], row["dispatched_shipments"]),
        on_time_delivery_rate=_ratio(row["delivered_on_time_shipments"], row["delivered_shipments"]),
        ndr_rate=_ratio(row["ndr_shipments"], row["dispatched_shipments"]),
        rto_rate=_ratio(row["rto_shipments"], row["dispatched_shipments"]),
    )
    return out


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else _number(v) for k, v in row.items()}


def _worst(rows: list[dict[str, Any]], key: str, *, descending: bool, minimum: int, limit: int = 5) -> list[dict]:
    ranked = [r for r in rows if r.get(key) is not None and (r.get("shipments") or r.get("orders") or 0) >= minimum]
    return sorted(ranked, key=lambda r: r[key], reverse=descending)[:limit]


def kpis(conn: psycopg.Connection, date_from: date | None = None, date_to: date | None = None,
         country: str | None = None) -> dict[str, Any]:
    """Everything the KPI page shows, for one date range (inclusive, local business days) and
    optionally one country. With no dates: the whole range the marts hold."""
    cur = conn.cursor(row_factory=dict_row)
    plain = conn.cursor(row_factory=tuple_row)
    first, last = plain.execute(RANGE_SQL).fetchone()
    date_from = date_from or first or date.today()
    date_to = date_to or last or date.today()
    params = {"date_from": date_from, "date_to": date_to, "country": country}
    totals = rates(cur.execute(TOTALS_SQL, params).fetchone())
    # Per location, units ordered count at the order's first shipment but units allocated at every
    # shipment: their ratio is no fill rate there (a split order's second store would show > 100 %).
    locations = [{**rates(r), "fill_rate": None} for r in cur.execute(LOCATION_SQL, params).fetchall()]
    stores = [r for r in locations if r["location_type"] == "store"]
    couriers = [rates(r) for r in cur.execute(COURIER_SQL, params).fetchall() if r["courier"] != "none"]
    accuracy = [_plain(r) for r in cur.execute(ACCURACY_SQL, params).fetchall()]
    return {
        "filters": {"from": date_from.isoformat(), "to": date_to.isoformat(), "country": country},
        "countries": [r[0] for r in plain.execute(COUNTRIES_SQL).fetchall()],
        "totals": totals,
        "trend": [_plain(rates(r)) for r in cur.execute(TREND_SQL, params).fetchall()],
        "by_country": [rates(r) for r in cur.execute(COUNTRY_SQL, params).fetchall()],
        "by_location": locations,
        "by_courier": couriers,
        # Worst first: stores whose orders most often had to be routed again (a rejected pick or a
        # hold); couriers with the most failed deliveries (NDR), then the lowest on-time share.
        "worst_stores": _worst(stores, "reroute_rate", descending=True, minimum=1),
        "worst_couriers": sorted(couriers, key=lambda r: (-(r["ndr_rate"] or 0), r["on_time_delivery_rate"] or 0,
                                                          -(r["cost_per_shipment"] or 0)))[:5],
        "promise_accuracy": accuracy,
        "data_quality": [_plain(r) for r in cur.execute(QUALITY_SQL, params).fetchall()],
    }
