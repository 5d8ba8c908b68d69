"""`oms routing …`: routing profiles (list, show, validate, create, activate), decision
explanations, replays of a past period under another profile, courier rate cards. Mount with `app.add_typer(routing_cli.app, name="routing")`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from oms.routing import decisions, inputs, profiles

app = typer.Typer(help="Order routing: profiles as versioned data, decisions with explanations.", no_args_is_help=True)
profile_app = typer.Typer(help="Routing profiles per country: a new version changes routing, no deploy.",
                          no_args_is_help=True)
ratecard_app = typer.Typer(help="Courier rate cards for the shipping-cost and service-level sorts.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")
app.add_typer(ratecard_app, name="ratecard")

console = Console(soft_wrap=True)
err = Console(stderr=True)


def _dsn() -> str:
    from oms.settings import get_settings

    return os.environ.get("OMS_WAREHOUSE_DSN") or get_settings().warehouse_dsn


def _connect():
    from oms.warehouse import connect

    return connect(_dsn())


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"{path}: cannot read JSON ({exc})", 2)


def _by() -> str:
    return os.environ.get("OMS_ADMIN_NAME") or os.environ.get("USER") or "cli"


# ------------------------------------------------------------------------------------ profiles
@profile_app.command("list")
def profile_list(country: Annotated[str | None, typer.Option(help="Only this country.")] = None) -> None:
    """Every version, newest first; the active one is marked."""
    with _connect() as conn:
        rows = profiles.list_versions(conn, country)
    table = Table()
    for column in ("country", "version", "active", "name", "rules", "created by", "created at", "active from", "until"):
        table.add_column(column)
    for p in rows:
        table.add_row(p.country_code, str(p.version), "[green]●[/]" if p.is_active else "", p.name,
                      ", ".join(r.name for r in p.rules), p.created_by or "", f"{p.created_at:%Y-%m-%d %H:%M}",
                      f"{p.activated_at:%Y-%m-%d %H:%M}" if p.activated_at else "",
                      f"{p.deactivated_at:%Y-%m-%d %H:%M}" if p.deactivated_at else "")
    console.print(table)


@profile_app.command("show")
def profile_show(
    country: Annotated[str, typer.Argument(help="ISO country code, e.g. AE.")],
    version: Annotated[int | None, typer.Option(help="A version; default the active one.")] = None,
) -> None:
    """Print a version as the JSON document `create --file` takes (edit it, create it again)."""
    with _connect() as conn:
        try:
            p = profiles.get_version(conn, country, version) if version else profiles.get_active(conn, country)
        except profiles.ProfileNotFound as exc:
            fail(str(exc))
    if p is None:
        fail(f"{country.upper()} has no active routing profile; see `oms routing profile list`")
    err.print(f"{p.country_code} v{p.version}{' (active)' if p.is_active else ''} by {p.created_by}, {p.created_at:%Y-%m-%d %H:%M}")
    print(json.dumps(profiles.spec_document(p), indent=2))


@profile_app.command("validate")
def profile_validate(file: Annotated[Path, typer.Option("--file", help="Profile JSON document.")]) -> None:
    """Check a profile document without storing it."""
    try:
        spec = profiles.parse_spec(_read_json(file))
    except profiles.ProfileError as exc:
        fail("invalid profile:\n  " + "\n  ".join(exc.problems), 2)
    console.print(f"valid: {spec.country_code} '{spec.name}', {len(spec.rules)} rule(s): "
                  + ", ".join(r.name for r in spec.rules))


@profile_app.command("create")
def profile_create(
    file: Annotated[Path, typer.Option("--file", help="Profile JSON document (see docs/routing.md).")],
    activate: Annotated[bool, typer.Option("--activate", help="Make it the active version at once.")] = False,
    by: Annotated[str | None, typer.Option(help="Who makes the change (default $OMS_ADMIN_NAME or $USER).")] = None,
) -> None:
    """Store a profile as the country's next version (validated; inactive unless --activate)."""
    document = _read_json(file)
    with _connect() as conn:
        try:
            p = profiles.create_version(conn, document, by or _by(), activate=activate)
        except profiles.ProfileError as exc:
            fail("invalid profile:\n  " + "\n  ".join(exc.problems), 2)
    state = "active" if p.is_active else f"inactive; activate with `oms routing profile activate {p.country_code} {p.version}`"
    console.print(f"created {p.country_code} v{p.version} '{p.name}' ({state})")


@profile_app.command("activate")
def profile_activate(
    country: Annotated[str, typer.Argument(help="ISO country code.")],
    version: Annotated[int, typer.Argument(help="The version to route with from now on.")],
    by: Annotated[str | None, typer.Option(help="Who makes the change.")] = None,
) -> None:
    """Route the country's next orders with this version (an old version comes back as a copy)."""
    with _connect() as conn:
        try:
            p = profiles.activate(conn, country, version, by or _by())
        except profiles.ProfileNotFound as exc:
            fail(str(exc))
    copied = f" (a copy of v{p.copied_from_version})" if p.copied_from_version and p.version != version else ""
    console.print(f"active: {p.country_code} v{p.version}{copied} '{p.name}'")


# ------------------------------------------------------------------------------------ explain
@app.command("explain")
def explain(
    increment_id: Annotated[str, typer.Argument(help="The order number (Magento increment id).")],
    all_decisions: Annotated[bool, typer.Option("--all", help="Every decision, not only the latest.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The decisions as the API returns them.")] = False,
) -> None:
    """Why an order was routed where it was: rule, candidates, scores, exclusions."""
    with _connect() as conn:
        found = decisions.decisions_for_order(conn, increment_id)
    if not found:
        fail(f"no routing decision for order {increment_id}")
    shown = found if all_decisions else found[:1]
    if as_json:
        print(json.dumps(shown, indent=2, default=str))
        return
    for d in shown:
        version = f"v{d['profile_version']}" if d["profile_version"] is not None else "-"
        console.print(f"[bold]decision {d['decision_id']}[/] at {d['decided_at']} · {d['outcome']} ({d['reason']}) · "
                      f"profile {d['country_code']} {version} · rule {d['rule_name'] or '-'}")
        console.print(d["explanation"], soft_wrap=True)
        if d["candidates"]:
            table = Table()
            for column in ("location", "type", "status", "rank", "atp", "scores", "why not"):
                table.add_column(column)
            for c in d["candidates"]:
                notes = c.get("notes") or {}
                scores = ", ".join(f"{k}={v}" + (f" ({notes[k]})" if k in notes else "") for k, v in c["scores"].items())
                table.add_row(c["store_id"], c["location_type"], c["status"], str(c["rank"] or ""),
                              ", ".join(f"{k}:{v:g}" for k, v in c["atp"].items()), scores,
                              "; ".join(r["detail"] for r in c["reasons"]))
            console.print(table)
    if len(found) > len(shown):
        console.print(f"({len(found) - len(shown)} earlier decision(s); --all shows them)")


# --------------------------------------------------------------------------------------- replay
def _moment(value: str, what: str):
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{what}: not an ISO date or time: {value!r}", 2)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("replay")
def replay_command(
    country: Annotated[str, typer.Option(help="ISO country code, e.g. AE.")],
    start: Annotated[str, typer.Option("--from", help="Period start (ISO date or time, UTC unless it says).")],
    end: Annotated[str, typer.Option("--to", help="Period end, exclusive.")],
    profile: Annotated[str, typer.Option(help="name@version, a version number, or 'ran' (each decision with the "
                                              "version that made it).")] = "ran",
    profile_file: Annotated[Path | None, typer.Option("--profile-file", help="An unsaved profile document "
                                                                            "(what-if).")] = None,
    promise_days: Annotated[float, typer.Option(help="Transit days counted as on time.")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer as JSON.")] = False,
) -> None:
    """Re-route a past period's orders as they arrived, under another profile, side by side with
    what happened. Read-only: safe while the platform routes live orders."""
    from oms.routing import replay

    frm, to = _moment(start, "--from"), _moment(end, "--to")
    if to <= frm:
        fail("--to must be after --from", 2)
    with _connect() as conn:
        try:
            if profile_file is not None:
                target = profiles.parse_spec(_read_json(profile_file))
                if target.country_code != country.upper():
                    fail(f"{profile_file} is a profile for {target.country_code}, not {country.upper()}", 2)
            else:
                target = replay.parse_profile_ref(conn, country.upper(), profile)
        except (profiles.ProfileError, profiles.ProfileNotFound) as exc:
            fail(str(exc), 2)
        result = replay.replay(conn, country, frm, to, target, promise_days=promise_days)
    if as_json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
        return
    console.print(f"{result.country} {frm:%Y-%m-%d %H:%M} → {to:%Y-%m-%d %H:%M}: {result.events} decision(s) "
                  f"replayed with {result.profile} — {result.differences} difference(s) "
                  f"({result.replayed} replayed in {result.seconds:.2f} s"
                  + (f", {result.orders_per_second:,} orders/s" if result.orders_per_second else "") + ")")
    table = Table()
    for column in ("figure", "recorded", "replay"):
        table.add_column(column)
    for label, a, b in replay.comparison_rows(result):
        table.add_row(label, "" if a is None else str(a), "" if b is None else str(b))
    console.print(table)
    loads = Table(title="Peak shipments per store and day (recorded → replay)")
    for column in ("store", "capacity", "recorded peak", "replay peak", "days over (recorded → replay)"):
        loads.add_column(column)
    rec = {x["store_id"]: x for x in result.recorded.get("store_load", [])}
    rep = {x["store_id"]: x for x in result.replay.get("store_load", [])}
    for sid in sorted(rec.keys() | rep.keys()):
        a, b = rec.get(sid, {}), rep.get(sid, {})
        loads.add_row(sid, str(a.get("capacity") or b.get("capacity") or "—"), str(a.get("peak_shipments", 0)),
                      str(b.get("peak_shipments", 0)),
                      f"{a.get('days_over_capacity', 0)} → {b.get('days_over_capacity', 0)}")
    console.print(loads)
    for change in result.changed_orders[:10]:
        console.print(f"  {change['order']} @ {change['decided_at']}: {change['recorded']} → {change['replay']}")
    for note in result.notes:
        console.print(f"note: {note}")


# ----------------------------------------------------------------------------------- rate cards
@ratecard_app.command("load")
def ratecard_load(file: Annotated[Path, typer.Option("--file", help="JSON list of rate-card rows.")]) -> None:
    """Add or change courier lanes (upsert on country, courier, from, to, bands)."""
    from pydantic import ValidationError

    rows = _read_json(file)
    rows = rows if isinstance(rows, list) else [rows]
    try:
        with _connect() as conn:
            count = inputs.upsert_rate_cards(conn, rows)
    except ValidationError as exc:
        fail(f"invalid rate card: {exc}", 2)
    console.print(f"saved {count} rate card row(s)")
