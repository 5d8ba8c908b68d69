"""`oms`: the operator's command line for the embedded stack and the platform's data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from oms import reference, tokens
from oms.integrations.airflow import airflow_api
from oms.routing import cli as routing_cli
from oms.settings import get_settings
from oms.warehouse import apply_ddl, connect

app = typer.Typer(help="Omnichannel OMS data platform: the pipeline, backfills, tokens, reference data and routing.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
pipeline_app = typer.Typer(help="Run the pipeline's DAGs through Airflow.", no_args_is_help=True)
token_app = typer.Typer(help="Local API bearer tokens with scopes.", no_args_is_help=True)
channel_app = typer.Typer(help="Sales channels: one Magento website per country.", no_args_is_help=True)
store_app = typer.Typer(help="Stores and warehouses (store id = the ERP's location code).", no_args_is_help=True)
db_app = typer.Typer(help="The warehouse database.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(token_app, name="token")
app.add_typer(channel_app, name="channel")
app.add_typer(store_app, name="store")
app.add_typer(db_app, name="db")
app.add_typer(routing_cli.app, name="routing", help="Routing profiles (rules as data) and decision explanations.")

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)  # one line, however narrow the terminal
    raise typer.Exit(code)


def require_scheduler(airflow_url: str) -> None:
    """Fail at once, in one line, when no DAG run could start: without a live scheduler every run
    stays queued and a command waiting for it would only time out."""
    from oms.integrations.airflow import scheduler_down_reason

    reason = scheduler_down_reason(airflow_url)
    if reason:
        fail(f"no live Airflow scheduler: {reason}; nothing would run. Run `oms up` (it restarts what Airflow's "
             "monitor calls unhealthy), then `oms status`.")


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=False)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply sql/*.sql to the configured warehouse (idempotent; the database must exist)."""
    try:
        applied = apply_ddl(get_settings().warehouse_dsn)
    except Exception as exc:  # noqa: BLE001 — shown to the operator as is
        fail(f"cannot migrate the warehouse ({exc})")
    console.print(f"applied: {', '.join(applied)}")


# ---------------------------------------------------------------- pipeline
def _parse_moment(value: str | None, default: datetime) -> datetime:
    if value is None:
        return default
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pipeline_app.command("run")
def pipeline_run(
    start: Annotated[str | None, typer.Option("--from", help="Window start (ISO, UTC); default 1 day before --to.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Window end (ISO, UTC); default now.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each DAG run.")] = 600,
) -> None:
    """Trigger the pipeline now (ERP stock + Magento orders ingest → ATP and order marts), wait, print what happened."""
    settings = get_settings()
    from oms.integrations.airflow import PIPELINE_DAGS
    from oms.ops.dag_runs import run_pipeline

    window_end = _parse_moment(end, datetime.now(UTC).replace(microsecond=0))
    window_start = _parse_moment(start, window_end - timedelta(days=1))
    if window_start >= window_end:
        fail("--from must be before --to")
    require_scheduler(settings.airflow_url)
    api = airflow_api(settings)
    try:
        dags = api.wait_for_dags(PIPELINE_DAGS)
    except (httpx.HTTPError, TimeoutError) as exc:
        fail(f"Airflow is not reachable or has not parsed the DAGs ({exc}); run `oms up` and `oms status`.")
    # A paused DAG's runs stay queued and asset events do not start it: the wait would only time out.
    paused = [dag_id for dag_id, dag in dags.items() if dag.get("is_paused")]
    if paused:
        fail(f"paused in Airflow: {', '.join(paused)}; the pipeline waits for {'it' if len(paused) == 1 else 'them'} "
             "and nothing would run. Unpause in the Airflow UI (or `airflow dags unpause <dag_id>`), then run again.")
    with _progress() as progress:
        steps: dict[str, int] = {}

        def tick(dag_id: str, state: str) -> None:
            if dag_id not in steps:
                steps[dag_id] = progress.add_task(dag_id, total=None)
            progress.update(steps[dag_id], description=f"{dag_id}: {state}")

        reports = run_pipeline(api, window_start, window_end, timeout, tick)
    print_run_reports(reports)
    if any(r.state != "success" for r in reports):
        fail("a pipeline run failed; see the Airflow UI for its logs: " + settings.airflow_url)


def _flatten(value, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        return [part for key, item in value.items() for part in _flatten(item, f"{prefix}{key}.")]
    return [f"{prefix.rstrip('.')}={value}"]


def print_run_reports(reports) -> None:
    console.print("[bold]Pipeline runs[/]")
    for r in reports:
        colour = "green" if r.state == "success" else "red"
        window = (f"window {r.data_interval_start[:19]} → {r.data_interval_end[:19]}"
                  if r.data_interval_start and r.data_interval_end else "asset-triggered")
        console.print(f"  [bold]{r.dag_id}[/] [{colour}]{r.state}[/] in {r.seconds:.1f}s · {window} · run {r.run_id}")
        console.print("    tasks:  " + ", ".join(f"{k}={v}" for k, v in r.tasks.items()))
        if isinstance(r.result, dict):
            console.print("    result: " + " ".join(_flatten({k: v for k, v in r.result.items() if k != "batch_id"})))


BACKFILL_POLL_SECONDS = 2.0


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--from", help="First logical date to re-run (ISO, UTC).")],
    end: Annotated[str, typer.Option("--to", help="Last logical date to re-run (ISO, UTC).")],
    dag: Annotated[list[str] | None, typer.Option("--dag", help="Repeatable; a DAG id.")] = None,
    all_windowed: Annotated[bool, typer.Option("--all", help="Every time-windowed ingestion DAG.")] = False,
    reprocess: Annotated[str, typer.Option(help="none | failed | completed: which existing runs to redo.")] = "failed",
    max_active_runs: Annotated[int, typer.Option(help="Runs in flight per DAG.")] = 2,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the runs it would create, create nothing.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for completion.")] = 3600,
) -> None:
    """Re-run data intervals after an outage, through Airflow 3 backfills (REST API v2); shows each
    DAG's progress until Airflow completes the backfill. The ingestion runs' assets then trigger
    atp_build, which rebuilds the marts. docs/runbook.md says which range to give per outage."""
    import time as _time

    from oms.integrations.airflow import WINDOWED_DAGS, backfill_create, backfill_dry_run, backfill_progress

    dag_ids = list(WINDOWED_DAGS) if all_windowed else list(dict.fromkeys(dag or []))
    if not dag_ids:
        fail("give --dag DAG_ID (repeatable) or --all", 2)
    if reprocess not in {"none", "failed", "completed"}:
        fail("--reprocess must be none, failed or completed", 2)
    try:
        window_start = _parse_moment(start, datetime.now(UTC))
        window_end = _parse_moment(end, datetime.now(UTC))
    except ValueError as exc:
        fail(f"--from/--to must be ISO dates or times ({exc})", 2)
    if window_start >= window_end:
        fail("--from must be before --to", 2)
    window_start, window_end = window_start.isoformat(), window_end.isoformat()
    if not dry_run:
        require_scheduler(get_settings().airflow_url)
    api = airflow_api(get_settings())

    def refused(exc: httpx.HTTPError, what: str) -> None:
        if isinstance(exc, httpx.HTTPStatusError):
            detail = exc.response.text[:300]
            try:
                detail = exc.response.json().get("detail", detail)
            except ValueError:
                pass
            fail(f"Airflow refused {what}: {exc.response.status_code} {detail}")
        fail(f"Airflow is not reachable ({exc}); run `oms up`.")

    try:
        planned = {d: backfill_dry_run(api, d, window_start, window_end, reprocess) for d in dag_ids}
    except httpx.HTTPError as exc:
        refused(exc, "the backfill dry run")
    for dag_id, dates in planned.items():
        span = f" {dates[0][:19]} … {dates[-1][:19]}" if dates else " (nothing to re-run)"
        console.print(f"{dag_id}: {len(dates)} run(s){span}")
    if dry_run:
        console.print("dry run: nothing created")
        return
    todo = [d for d in dag_ids if planned[d]]
    if not todo:
        console.print("nothing to backfill")
        return
    with Progress(*Progress.get_default_columns(), TimeElapsedColumn(), console=err) as progress:
        backfills, bars = {}, {}
        for dag_id in todo:
            try:
                backfills[dag_id] = backfill_create(api, dag_id, window_start, window_end, reprocess, max_active_runs)
            except httpx.HTTPError as exc:
                refused(exc, f"the backfill of {dag_id} (one may already be running: see the Airflow UI)")
            bars[dag_id] = progress.add_task(f"{dag_id} (backfill {backfills[dag_id]['id']})", total=len(planned[dag_id]))
        deadline = _time.monotonic() + timeout
        while True:
            try:
                status = {d: backfill_progress(api, backfills[d], planned[d]) for d in todo}
            except httpx.HTTPError as exc:
                refused(exc, "the progress query")
            for dag_id, state in status.items():
                failed_note = f", {state.failed} failed" if state.failed else ""
                progress.update(bars[dag_id], completed=state.done,
                                description=f"{dag_id} (backfill {backfills[dag_id]['id']}{failed_note})")
            if all(state.finished for state in status.values()):
                break
            if _time.monotonic() > deadline:
                fail(f"backfill still running after {timeout:.0f}s; follow it in the Airflow UI")
            _time.sleep(BACKFILL_POLL_SECONDS)
    failed = {d: s.failed for d, s in status.items() if s.failed}
    if failed:
        fail(f"backfill finished with failed runs: {failed}; see the runs in the Airflow UI, fix, then "
             "re-run with --reprocess failed")
    console.print(f"backfill done: {', '.join(f'{d} {s.done} run(s)' for d, s in status.items())}")


# ---------------------------------------------------------------- tokens
@token_app.command("create")
def token_create(
    scope: Annotated[list[str], typer.Option("--scope", "-s", help=f"Repeatable; one of {', '.join(tokens.SCOPES)}.")],
    name: Annotated[str, typer.Option(help="Who or what uses it.")] = "local",
    store: Annotated[list[str] | None, typer.Option(
        "--store", help="Repeatable; required with --scope store: the store(s) the token acts for.")] = None,
) -> None:
    """Make an API token and print it on stdout (only its hash is stored)."""
    settings = get_settings()
    try:
        with connect(settings.warehouse_dsn) as conn:
            token = tokens.create_token(conn, name, scope, store)
    except (tokens.UnknownScope, tokens.StoreBindingError) as exc:
        fail(str(exc), 2)
    except Exception as exc:  # noqa: BLE001
        fail(f"cannot reach the warehouse at {settings.pg_host}:{settings.pg_port} ({exc}); run `oms up`.")
    print(token)


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke every active token with this name."""
    with connect(get_settings().warehouse_dsn) as conn:
        count = tokens.revoke_token(conn, name)
    console.print(f"revoked {count} token(s) named {name!r}")


# ---------------------------------------------------------------- reference data
def _load_records(file: Path) -> list[dict]:
    try:
        body = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"{file}: cannot read JSON ({exc})")
    return body if isinstance(body, list) else [body]


def _upsert(kind: str, upsert, records: list[dict]) -> None:
    from pydantic import ValidationError

    try:
        with connect(get_settings().warehouse_dsn) as conn:
            count = upsert(conn, records)
    except ValidationError as exc:
        fail(f"invalid {kind}: {exc}", 2)
    console.print(f"saved {count} {kind}(s)")


@channel_app.command("add")
def channel_add(
    channel_code: str, country_code: str, name: str, currency_code: str,
    website: Annotated[str, typer.Option(help="Magento website code.")],
    stock_id: Annotated[int, typer.Option(help="Magento MSI stock id of that website.")],
    store_code: Annotated[str | None, typer.Option(help="Magento store view code (default: website).")] = None,
    store_id: Annotated[int | None, typer.Option(
        help="Magento store (view) id stamped on the channel's orders; orders are pulled per channel by it.")] = None,
    buffer_qty: Annotated[float, typer.Option(help="Units held back per SKU on this channel.")] = 0,
) -> None:
    """Add or change a sales channel (one per country)."""
    _upsert("channel", reference.upsert_channels, [dict(
        channel_code=channel_code, country_code=country_code.upper(), name=name, currency_code=currency_code.upper(),
        magento_website_code=website, magento_store_code=store_code or website, magento_stock_id=stock_id,
        magento_store_id=store_id, buffer_qty=buffer_qty)])


@channel_app.command("list")
def channel_list() -> None:
    """List sales channels."""
    with connect(get_settings().warehouse_dsn) as conn:
        rows = conn.execute("SELECT * FROM ref.channel ORDER BY country_code").fetchall()
    _table(rows, ["channel_code", "country_code", "name", "currency_code", "magento_website_code", "magento_stock_id",
                  "magento_store_id", "buffer_qty", "active"])


@store_app.command("add")
def store_add(
    file: Annotated[Path | None, typer.Option(help="JSON file: one location or a list.")] = None,
    store_id: Annotated[str | None, typer.Option(help="The ERP's location code.")] = None,
    name: str | None = None,
    country: str | None = None,
    location_type: Annotated[str, typer.Option("--type", help="store | warehouse")] = "store",
    ship_from_store: bool = True,
    pickup: bool = True,
    lat: float | None = None,
    lon: float | None = None,
    city: str | None = None,
) -> None:
    """Add or change stores/warehouses, from options or a JSON file."""
    if file:
        records = _load_records(file)
    elif store_id and name and country:
        records = [dict(store_id=store_id, name=name, country_code=country.upper(), location_type=location_type,
                        ship_from_store=ship_from_store, pickup_enabled=pickup, latitude=lat, longitude=lon, city=city)]
    else:
        fail("give --file, or --store-id, --name and --country", 2)
    _upsert("location", reference.upsert_locations, records)


@store_app.command("list")
def store_list(country: Annotated[str | None, typer.Option(help="Only this country.")] = None) -> None:
    """List stores and warehouses."""
    with connect(get_settings().warehouse_dsn) as conn:
        rows = conn.execute(
            "SELECT * FROM ref.location WHERE %(c)s::text IS NULL OR country_code = %(c)s ORDER BY store_id",
            {"c": country.upper() if country else None},
        ).fetchall()
    _table(rows, ["store_id", "name", "country_code", "location_type", "city", "ship_from_store", "pickup_enabled", "magento_source_code", "active"])


def _table(rows: list[dict], columns: list[str]) -> None:
    table = Table()
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    console.print(table)


def _register_plugins() -> None:
    """Commands other installed packages add (the development tooling adds `up`, `demo`, `sandbox`…)
    through the `oms.cli` entry-point group; the production package knows none of them by name."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="oms.cli"):
        entry.load()(app)


_register_plugins()
