"""The pipeline's health for data engineers (`GET /v1/pipeline/health`).

Three kinds of facts, each from where it lives:
- DAG runs: the last successful run per DAG, from Airflow's REST API v2 (never its database);
- source lag: now − the newest `loaded_at` of each dbt source that declares freshness
  (dbt/models/staging/*/_*__sources.yml: the same `loaded_at_field` and `error_after` that
  `dbt source freshness` checks), and the mart snapshot's age (`oms.atp_snapshot.built_at`);
- queue depths: open order exceptions, open quarantine per source, unsent notifications (when
  that table exists), unpublished stock (the publisher's own delta against `oms.publish_ledger`),
  unrepaired Magento drift, sales postings the ERP has not acknowledged, recent alerts;
- ERP reconciliation: the last erp_reconciliation run's differences per cause, and the age of
  the oldest sales posting the ERP has not acknowledged (unhealthy past OMS_POSTING_ACK_STALE_HOURS).

`judge` turns them into healthy/unhealthy with reasons. Stale = older than the threshold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from oms import schedules
from oms.settings import REPO_ROOT

STAGING = REPO_ROOT / "dbt" / "models" / "staging"
PERIODS = {"minute": "minutes", "hour": "hours", "day": "days"}

# How often each DAG is expected to succeed: the longest gap of its time schedule (oms.schedules,
# which the DAG files build their timetables from); stale after OMS_HEALTH_DAG_STALE_FACTOR
# (default 3) of these. DAGs not listed are reported, not judged.
DAG_CADENCE = {dag_id: schedules.cadence(dag_id) for dag_id in schedules.SCHEDULES}
# The marts one atp_build writes; their age is the last recorded snapshot's.
MART_SNAPSHOT = ("fct_atp_store", "fct_atp_country", "fct_orders", "fct_order_lines")
MART_MAX_AGE = timedelta(hours=2)  # hourly safety-net schedule, plus one missed run


@dataclass(frozen=True)
class SourceFreshness:
    source: str          # dbt source.table, e.g. "erp.erp_stock"
    relation: str        # schema.table
    loaded_at_field: str
    warn_after: timedelta | None
    error_after: timedelta | None


def _period(spec: dict | None) -> timedelta | None:
    if not spec or spec.get("count") is None:
        return None
    return timedelta(**{PERIODS[spec["period"]]: int(spec["count"])})


@lru_cache(maxsize=1)
def source_freshness(staging: Path = STAGING) -> tuple[SourceFreshness, ...]:
    """Every source table with a freshness rule, as dbt reads it (table config over source config)."""
    found = []
    for path in sorted(staging.glob("*/_*__sources.yml")):
        for source in (yaml.safe_load(path.read_text()) or {}).get("sources", []):
            source_config = {**source.get("config", {}), **{k: source[k] for k in ("freshness", "loaded_at_field")
                                                            if k in source}}
            for table in source.get("tables", []):
                config = {**source_config, **table.get("config", {}),
                          **{k: table[k] for k in ("freshness", "loaded_at_field") if k in table}}
                freshness, field = config.get("freshness"), config.get("loaded_at_field")
                if not freshness or not field:
                    continue
                found.append(SourceFreshness(
                    source=f"{source['name']}.{table['name']}",
                    relation=f"{source.get('schema', source['name'])}.{table.get('identifier', table['name'])}",
                    loaded_at_field=field,
                    warn_after=_period(freshness.get("warn_after")),
                    error_after=_period(freshness.get("error_after")),
                ))
    return tuple(found)


def stale_after_override() -> timedelta | None:
    """OMS_HEALTH_SOURCE_STALE_MINUTES tightens every source's threshold (e.g. 60 in production,
    where a quiet hour means a stalled feed); unset, dbt's error_after applies."""
    value = os.environ.get("OMS_HEALTH_SOURCE_STALE_MINUTES")
    return timedelta(minutes=float(value)) if value else None


# --------------------------------------------------------------------------- warehouse facts
async def _scalar(conn, sql: str, params: tuple = ()) -> Any:
    cursor = await conn.execute(sql, params)
    row = await cursor.fetchone()
    return row[0] if row else None


async def _exists(conn, relation: str) -> bool:
    return await _scalar(conn, "SELECT to_regclass(%s) IS NOT NULL", (relation,))


async def warehouse_facts(conn, now: datetime) -> dict[str, Any]:
    """Source lag, mart age and queue depths, on an async psycopg connection (autocommit)."""
    from psycopg import sql as pgsql

    from oms.publishing.publisher import DELTA_SQL

    sources = []
    override = stale_after_override()
    for rule in source_freshness():
        schema, table = rule.relation.split(".", 1)
        latest = None
        if await _exists(conn, rule.relation):
            query = pgsql.SQL("SELECT max({}) FROM {}.{}").format(
                pgsql.Identifier(rule.loaded_at_field), pgsql.Identifier(schema), pgsql.Identifier(table))
            latest = await _scalar(conn, query)
        threshold = override or rule.error_after
        lag = (now - latest) if latest else None
        sources.append({
            "source": rule.source, "relation": rule.relation, "last_loaded_at": latest,
            "lag_seconds": round(lag.total_seconds()) if lag is not None else None,
            "warn_after_seconds": rule.warn_after.total_seconds() if rule.warn_after else None,
            "stale_after_seconds": threshold.total_seconds() if threshold else None,
            "stale": latest is None or (threshold is not None and lag > threshold),
            "warn": latest is not None and rule.warn_after is not None and lag > rule.warn_after,
        })

    built_at = await _scalar(conn, "SELECT max(built_at) FROM oms.atp_snapshot")
    mart_age = (now - built_at) if built_at else None
    marts = [{"mart": f"marts.{name}", "built_at": built_at,
              "age_seconds": round(mart_age.total_seconds()) if mart_age is not None else None,
              "stale_after_seconds": MART_MAX_AGE.total_seconds(),
              "stale": mart_age is None or mart_age > MART_MAX_AGE} for name in MART_SNAPSHOT]

    queues: dict[str, Any] = {
        "order_exceptions_open": await _scalar(
            conn, "SELECT count(*) FROM oms.order_exception WHERE resolved_at IS NULL"),
        "quarantine_open": {r[0]: r[1] for r in await (await conn.execute(
            "SELECT source, count(*) FROM raw.quarantine WHERE resolved_at IS NULL GROUP BY source ORDER BY source"
        )).fetchall()},
        "sales_postings_unacknowledged": await _scalar(
            conn, "SELECT count(*) FROM oms.sales_posting WHERE acked_at IS NULL"),
        "stock_drift_unrepaired_24h": await _scalar(
            conn, "SELECT count(*) FROM oms.stock_drift WHERE NOT repaired AND checked_at > now() - interval '24 hours'"),
        "alerts_24h": {r[0]: r[1] for r in await (await conn.execute(
            "SELECT kind, count(*) FROM oms.alert_log WHERE raised_at > now() - interval '24 hours' GROUP BY kind"
        )).fetchall()} if await _exists(conn, "oms.alert_log") else None,
    }
    queues["unsent_notifications"] = await _unsent_notifications(conn)
    try:  # the publisher's own delta: what a publish run would send now
        queues["unpublished_stock_items"] = await _scalar(conn, f"SELECT count(*) FROM ({DELTA_SQL}) AS delta")
    except Exception as exc:  # noqa: BLE001 — no marts yet (fresh install): unknown, said so
        queues["unpublished_stock_items"] = None
        queues["unpublished_stock_error"] = str(exc).splitlines()[0][:200]
    return {"sources": sources, "marts": marts, "queues": queues,
            "erp_reconciliation": await _reconciliation(conn, now)}


async def _reconciliation(conn, now: datetime) -> dict[str, Any] | None:
    """The last ERP reconciliation and the oldest posting the ERP has not acknowledged."""
    from oms.erp.reconciliation import stale_after

    if not await _exists(conn, "oms.erp_reconciliation_run"):
        return None
    last = await (await conn.execute(
        "SELECT run_date, pairs_compared, differences, by_cause, finished_at FROM oms.erp_reconciliation_run"
        " ORDER BY run_date DESC LIMIT 1")).fetchone()
    oldest = await _scalar(conn, "SELECT min(created_at) FROM oms.sales_posting WHERE acked_at IS NULL")
    age = (now - oldest) if oldest else None
    threshold = stale_after()
    return {
        "last_run_date": last[0].isoformat() if last else None,
        "pairs_compared": last[1] if last else None,
        "differences": last[2] if last else None,
        "differences_by_cause": last[3] if last else {},
        "finished_at": last[4] if last else None,
        "oldest_unacknowledged_posting_at": oldest,
        "oldest_unacknowledged_posting_age_seconds": round(age.total_seconds()) if age is not None else None,
        "posting_ack_stale_after_seconds": threshold.total_seconds(),
        "postings_stale": age is not None and age > threshold,
    }


async def _column_exists(conn, schema: str, table: str, column: str) -> bool:
    return await _scalar(conn, "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = %s"
                               " AND table_name = %s AND column_name = %s)", (schema, table, column))


async def _unsent_notifications(conn) -> int | None:
    """Customer notifications queued and not sent yet (oms.notification, status pending; sql/009).
    None when the table does not exist (a warehouse created before the after-sale tables)."""
    if not await _column_exists(conn, "oms", "notification", "status"):
        return None
    return await _scalar(conn, "SELECT count(*) FROM oms.notification WHERE status = 'pending'")


# --------------------------------------------------------------------------- DAG facts
def summarise_dags(dags: list[dict], last_success: dict[str, dict | None], last_run: dict[str, dict | None],
                   now: datetime) -> list[dict[str, Any]]:
    factor = float(os.environ.get("OMS_HEALTH_DAG_STALE_FACTOR", "3"))
    rows = []
    for dag in sorted(dags, key=lambda d: d["dag_id"]):
        dag_id = dag["dag_id"]
        success, latest = last_success.get(dag_id), last_run.get(dag_id)
        finished = _parse(success.get("end_date")) if success else None
        cadence = DAG_CADENCE.get(dag_id)
        max_age = cadence * factor if cadence else None
        rows.append({
            "dag_id": dag_id,
            "is_paused": dag.get("is_paused"),
            "last_success_run_id": success.get("dag_run_id") if success else None,
            "last_success_at": finished,
            "last_success_interval_end": success.get("data_interval_end") if success else None,
            "last_run_state": latest.get("state") if latest else None,
            "last_run_id": latest.get("dag_run_id") if latest else None,
            "stale_after_seconds": max_age.total_seconds() if max_age else None,
            "stale": bool(max_age) and (finished is None or now - finished > max_age),
        })
    return rows


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# --------------------------------------------------------------------------- Airflow's components
# An alert goes out when a scheduler, dag-processor or triggerer has not heartbeat for this long.
JOB_COMPONENTS = ("scheduler", "dag-processor", "triggerer")


def component_alert_after() -> timedelta:
    return timedelta(minutes=float(os.environ.get("OMS_COMPONENT_ALERT_AFTER_MINUTES", "5")))


def airflow_components(monitor: dict[str, Any] | None, error: str | None = None) -> list[dict[str, Any]]:
    """Airflow's component health from its monitor endpoint (REST API v2), the scheduler first;
    an api-server that does not answer is itself the one unhealthy component."""
    from oms.integrations.airflow import component_health

    if monitor is None:
        return [{"component": "api-server", "status": "unreachable", "healthy": False, "last_heartbeat": None,
                 "reason": f"Airflow api-server unreachable ({error})"}]
    found = component_health(monitor)
    # Without its database Airflow cannot read any heartbeat: that, not each component, is the cause.
    database_down = not found[-1].healthy
    return [{"component": c.name, "status": c.status, "healthy": c.healthy, "last_heartbeat": c.last_heartbeat,
             "reason": c.down_reason() if c.status == "unhealthy" and (c.name == "metadatabase" or not database_down)
             else None} for c in found]


def component_reasons(components: list[dict[str, Any]]) -> list[str]:
    return [c["reason"] for c in components if c["reason"]]


def stuck_components(components: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Job components unhealthy with a last heartbeat older than the alert threshold."""
    after = component_alert_after()
    return [c for c in components if c["component"] in JOB_COMPONENTS and c["status"] == "unhealthy"
            and (c["last_heartbeat"] is None or now - _parse(c["last_heartbeat"]) > after)]


def alert_stuck_components(components: list[dict[str, Any]], now: datetime, dsn: str) -> list[dict[str, Any]]:
    """Alert (oms.alerting: logged once per outage, then email/webhook) for each stuck component."""
    from oms.alerting import component_alert, dispatch

    return [dispatch(component_alert(c["component"], c["last_heartbeat"], c["reason"]), dsn=dsn)
            for c in stuck_components(components, now)]


# --------------------------------------------------------------------------- the verdict
def judge(airflow: dict[str, Any], warehouse: dict[str, Any]) -> list[str]:
    """Reasons the pipeline is unhealthy; empty when healthy."""
    reasons = []
    if airflow.get("error"):
        reasons.append(f"Airflow REST API: {airflow['error']}")
    for dag in airflow.get("dags", []):
        if dag["is_paused"]:
            continue
        if dag["stale"]:
            since = dag["last_success_at"].isoformat() if dag["last_success_at"] else "never"
            reasons.append(f"DAG {dag['dag_id']}: no successful run within {dag['stale_after_seconds'] / 60:.0f} min"
                           f" (last success: {since})")
        elif dag["last_run_state"] == "failed":
            reasons.append(f"DAG {dag['dag_id']}: latest run {dag['last_run_id']} failed")
    for source in warehouse.get("sources", []):
        if source["stale"]:
            if source["last_loaded_at"] is None:
                reasons.append(f"source {source['source']}: nothing loaded yet")
            else:
                reasons.append(f"source {source['source']} stalled: last load {source['lag_seconds'] / 60:.0f} min ago"
                               f" (threshold {source['stale_after_seconds'] / 60:.0f} min)")
    stale_marts = [m["mart"] for m in warehouse.get("marts", []) if m["stale"]]
    if stale_marts:
        age = warehouse["marts"][0]["age_seconds"]
        reasons.append(f"marts not rebuilt within {MART_MAX_AGE.total_seconds() / 60:.0f} min"
                       f" ({'never built' if age is None else f'last {age / 60:.0f} min ago'}): {', '.join(stale_marts)}")
    recon = warehouse.get("erp_reconciliation") or {}
    if recon.get("postings_stale"):
        reasons.append(f"the ERP has not acknowledged a sales posting for "
                       f"{recon['oldest_unacknowledged_posting_age_seconds'] / 3600:.1f} h (threshold "
                       f"{recon['posting_ack_stale_after_seconds'] / 3600:g} h)")
    return reasons
