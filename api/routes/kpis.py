"""Fulfilment KPIs for analysts: `GET /v1/kpis` (JSON) and `GET /dashboard` (the KPI page).

The page is static (no data, no token in it, no CDN): its script asks /v1/kpis with the token
the analyst gives it (kept in the browser's localStorage, or passed once as `#token=…` in the
address — a fragment never reaches the server or its logs) and draws the charts as SVG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, JSONResponse

from api.auth import Caller, require
from api.db import run_sync
from api.deps import Pool
from api.errors import ApiError
from api.models import Kpis
from api.params import IsoDate
from oms import kpis

router = APIRouter(tags=["kpis"])
PAGE = Path(__file__).resolve().parents[1] / "static" / "dashboard.html"


@router.get("/v1/kpis", summary="Fulfilment KPIs for a date range and optionally one country", response_model=Kpis)
async def get_kpis(
    pool: Pool,
    date_from: Annotated[IsoDate | None, Query(alias="from", description="First local business day (inclusive)")] = None,
    date_to: Annotated[IsoDate | None, Query(alias="to", description="Last local business day (inclusive)")] = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None,
    _: Caller = Depends(require("kpis:read")),
) -> JSONResponse:
    if date_from and date_to and date_from > date_to:
        raise ApiError(422, f"'from' ({date_from}) is after 'to' ({date_to})", code="invalid_range")
    body = await run_sync(pool, lambda conn: kpis.kpis(conn, date_from, date_to,
                                                         country.upper() if country else None))
    return JSONResponse(body)


@router.get("/dashboard", include_in_schema=False)
async def dashboard() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html")
