"""Liveness and readiness, open (no token): used by `oms up` and load balancers.

A health report, not an error: 503 answers carry the report itself (with Retry-After), so a
monitor reads the same fields either way."""

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import Pool
from api.errors import RETRY_AFTER_SECONDS

router = APIRouter(tags=["health"])


class HealthReport(BaseModel):
    status: Literal["ok", "unavailable"]
    warehouse: str  # "ok", or why it cannot be reached


@router.get("/health", summary="Is the API up and the warehouse reachable?", response_model=HealthReport,
            responses={503: {"model": HealthReport, "description": "not ready: the warehouse cannot be reached"}})
async def health(pool: Pool) -> JSONResponse:
    try:
        # 2 s, or less when requests wait less for a connection (OMS_API_POOL_TIMEOUT)
        async with pool.connection(timeout=min(2.0, pool.timeout)) as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 — any failure means not ready
        return JSONResponse({"status": "unavailable", "warehouse": str(exc)[:200]}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return JSONResponse({"status": "ok", "warehouse": "ok"})
