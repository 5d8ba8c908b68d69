"""`GET /v1/pipeline/health`: is the data pipeline keeping up? For data engineers and monitors.

Open like /health (numbers only, no records). 200 when healthy, 503 with the reasons when not.
DAG runs come from Airflow's REST API v2 (OMS_AIRFLOW_URL, OMS_AIRFLOW_PASSWORDS_FILE — the same
settings the API uses to send asset events), never from Airflow's database.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from api.deps import Events, Pool
from oms.integrations.airflow import AirflowApi
from oms.ops import health as pipeline_health

router = APIRouter(tags=["operations"])


class PipelineHealth(BaseModel):
    """The report; 200 when healthy, 503 (the same report) with the reasons when not."""

    model_config = ConfigDict(extra="allow")
    status: Literal["healthy", "unhealthy"]
    reasons: list[str]
    checked_at: datetime
    dags: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    marts: list[dict[str, Any]]
    queues: dict[str, Any]


async def airflow_components(api: AirflowApi | None) -> list[dict[str, Any]]:
    """Airflow's component health from its open monitor endpoint."""
    if api is None:
        return []
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return pipeline_health.airflow_components(await api.async_monitor(client))
    except (httpx.HTTPError, ValueError) as exc:
        return pipeline_health.airflow_components(None, type(exc).__name__)


async def dag_facts(api: AirflowApi | None, now: datetime) -> dict[str, Any]:
    """Each DAG's latest run and latest successful run, read through the REST API v2."""
    if api is None:
        return {"error": "not configured (set OMS_AIRFLOW_URL)", "dags": []}
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            dags = (await api.async_get(client, "/dags", limit=100))["dags"]

            async def runs(dag_id: str, **filters: Any) -> dict | None:
                found = (await api.async_get(client, f"/dags/{dag_id}/dagRuns", limit=1,
                                             order_by="-run_after", **filters))["dag_runs"]
                return found[0] if found else None

            ids = [d["dag_id"] for d in dags]
            successes = await asyncio.gather(*(runs(d, state="success") for d in ids))
            latest = await asyncio.gather(*(runs(d) for d in ids))
    except (httpx.HTTPError, OSError, KeyError, ValueError) as exc:
        return {"error": f"unreachable or refused ({type(exc).__name__}: {str(exc)[:200]})", "dags": []}
    return {"error": None, "dags": pipeline_health.summarise_dags(
        dags, dict(zip(ids, successes, strict=True)), dict(zip(ids, latest, strict=True)), now)}


@router.get("/v1/pipeline/health", summary="Last successful run per DAG, source lag, mart age, queue depths",
            response_model=PipelineHealth,
            responses={503: {"model": PipelineHealth, "description": "unhealthy: `reasons` says why"}})
async def pipeline_health_view(pool: Pool, events: Events) -> JSONResponse:
    now = datetime.now(UTC)
    airflow_task = asyncio.create_task(dag_facts(events.api, now))
    components_task = asyncio.create_task(airflow_components(events.api))
    try:
        async with pool.connection(timeout=5) as conn:
            warehouse = await pipeline_health.warehouse_facts(conn, now)
            warehouse_error = None
    except Exception as exc:  # noqa: BLE001 — the warehouse being down is the answer, not a 500
        warehouse, warehouse_error = {"sources": [], "marts": [], "queues": {}}, str(exc)[:300]
    airflow, components = await airflow_task, await components_task
    reasons = pipeline_health.judge(airflow, warehouse)
    if warehouse_error:
        reasons.insert(0, f"warehouse unreachable: {warehouse_error}")
    reasons[:0] = pipeline_health.component_reasons(components)  # the cause first: nothing runs without them
    if not warehouse_error and pipeline_health.stuck_components(components, now):
        await run_in_threadpool(pipeline_health.alert_stuck_components, components, now,
                                pool.conninfo)
    body = {"status": "unhealthy" if reasons else "healthy", "reasons": reasons, "checked_at": now,
            "components": components, "dags": airflow["dags"], **warehouse}
    return JSONResponse(jsonable_encoder(body), status_code=503 if reasons else 200)
