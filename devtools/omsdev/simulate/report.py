"""The simulation's figures as one table (the same numbers as the JSON result)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

TARGETS = {
    "oversell_per_1000_orders": "0",
    "undersell_share_of_demand": "≤ 0.005",
    "drift_share_between_reconciles": "≤ 0.001",
    "drift_after_reconcile": "0",
}


def print_table(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Promise accuracy: {result['days']} days, seed {result['seed']}, "
                        f"{result['orders'].get('placed', 0)} orders placed, {result['wall_seconds']} s wall")
    for column in ("figure", "value", "target"):
        table.add_column(column)
    for name, value in result["figures"].items():
        if isinstance(value, dict):
            value = f"p50 {value['p50']} · p95 {value['p95']} · max {value['max']} (n={value['n']})"
        table.add_row(name, str(value), TARGETS.get(name, ""))
    table.add_row("orders", ", ".join(f"{k}={v}" for k, v in sorted(result["orders"].items())), "")
    table.add_row("activity", ", ".join(f"{k}={v}" for k, v in sorted(result["activity"].items())), "")
    table.add_row("KPI marts vs simulator", str(result["kpi_check"]), "equal")
    table.add_row("ledger", f"{len(result['ledger_check']['world_conservation_errors'])} conservation errors, "
                            f"{result['ledger_check']['erp_book_vs_shelf_differences']} ERP book ≠ shelf", "0, 0")
    table.add_row("DAG runs", f"{result['dag_runs']['count']} ({len(result['dag_runs']['failed'])} not success), "
                              f"{result['dag_runs']['seconds']} s", "")
    console.print(table)


SERIES = (("oversold_lines", "oversold lines", "#c0392b"), ("undersold_units", "undersold units", "#e67e22"),
          ("drift_share", "drift (share of samples)", "#2980b9"), ("erp_movement_to_api_p95_s", "ERP→API p95 (s)",
                                                                     "#27ae60"))


def daily_svg(result: dict[str, Any]) -> str:
    """One small line chart per figure, one point per simulated day (hand-written SVG: no plotting
    library in the dependencies for four polylines)."""
    days = sorted(result["per_day"])
    rows = []
    for day in days:
        values = dict(result["per_day"][day])
        samples = values.get("drift_samples", 0)
        values["drift_share"] = values.get("drift_differing", 0) / samples if samples else 0
        rows.append(values)
    width, height, pad = 720, 130, 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height * len(SERIES)}" '
             f'font-family="sans-serif" font-size="11">']
    for index, (key, label, colour) in enumerate(SERIES):
        top = index * height
        values = [float(r.get(key) or 0) for r in rows]
        peak = max(values + [1e-9])
        step = (width - 2 * pad) / max(len(values) - 1, 1)
        points = " ".join(f"{pad + i * step:.1f},{top + height - 25 - (v / peak) * (height - 50):.1f}"
                          for i, v in enumerate(values))
        parts.append(f'<text x="{pad}" y="{top + 15}">{label} (max {peak:.4g})</text>')
        parts.append(f'<line x1="{pad}" y1="{top + height - 25}" x2="{width - pad}" y2="{top + height - 25}" '
                     'stroke="#999"/>')
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        if days:
            parts.append(f'<text x="{pad}" y="{top + height - 10}">{days[0]}</text>')
            parts.append(f'<text x="{width - pad}" y="{top + height - 10}" text-anchor="end">{days[-1]}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def incidents_markdown(result: dict[str, Any], limit: int = 20) -> str:
    """Every oversell and undersell incident with the chain of physical events before it."""
    lines = []
    chosen = [i for i in result["incidents"] if i["kind"] in ("oversell", "undersell", "store_rejection")]
    for incident in chosen[:limit]:
        what = ", ".join(f"{k}={v}" for k, v in incident.items() if k not in ("kind", "at", "chain", "free_units"))
        lines.append(f"- **{incident['kind']}** at {incident['at']}: {what}")
        for event in incident.get("chain") or []:
            lines.append(f"  - {event['at']} {event['kind']} {event['qty']:+g} {event['sku']} at {event['store_id']}"
                         f" ({event['ref']})")
    if len(chosen) > limit:
        lines.append(f"- … and {len(chosen) - limit} more in the JSON result")
    return "\n".join(lines) or "- none"
