"""Routing: decisions with their explanations, and the versioned profiles an admin changes.

- GET  /v1/routing/decisions/{increment_id}                        (orders:read)
- GET  /v1/routing/profiles?country=AE&active_only=true             (admin)
- POST /v1/routing/profiles?activate=true                           (admin) a new version
- POST /v1/routing/profiles/{country}/versions/{version}/activate   (admin)
- GET  /v1/routing/replay?country=AE&from=…&to=…&profile=ran|name@N  (admin or kpis:read) backtest, read-only

Mount with `app.include_router(routing.router)`. The statements are oms.routing's; the version
arithmetic and the active swap run in SQL functions, so the CLI and the API behave the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import errors
from psycopg.rows import dict_row

from api.auth import require
from api.db import run_sync
from api.responses import RawJSONResponse
from oms.routing import profiles
from oms.routing.decisions import DECISIONS_JSON_SQL
from oms.tokens import hash_token

router = APIRouter(prefix="/v1/routing", tags=["routing"])
_bearer = HTTPBearer(auto_error=False)

CountryPath = Annotated[str, Path(pattern=r"^[A-Za-z]{2}$", description="ISO country code, e.g. AE")]


@router.get("/decisions/{increment_id}", summary="Every routing decision about an order, newest first, with why")
async def routing_decisions(
    request: Request,
    increment_id: Annotated[str, Path(min_length=1, max_length=50)],
    _: set[str] = Depends(require("orders:read")),
) -> RawJSONResponse:
    async with request.app.state.pool.connection() as conn:
        count, body = await (await conn.execute(DECISIONS_JSON_SQL, {"increment_id": increment_id})).fetchone()
    if not count:
        raise HTTPException(404, f"no routing decision for order '{increment_id}'")
    return RawJSONResponse(body)


def _dump(profile: profiles.RoutingProfile) -> dict[str, Any]:
    return profile.model_dump(mode="json")


async def _actor(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    """The token's name: who changed routing, for the profile's created_by / activated_by."""
    async with request.app.state.pool.connection() as conn:
        row = await (await conn.execute("SELECT name FROM oms.api_token WHERE token_sha256 = %s",
                                        (hash_token(credentials.credentials),))).fetchone()
    return f"api:{row[0]}" if row else "api"


@router.get("/profiles", summary="Routing profile versions, newest first")
async def list_profiles(
    request: Request,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None,
    active_only: bool = False,
    _: set[str] = Depends(require("admin")),
) -> dict[str, Any]:
    params = {"country": country.upper() if country else None, "active_only": active_only}
    async with request.app.state.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        rows = await (await cur.execute(profiles.LIST_SQL, params)).fetchall()
    return {"profiles": [_dump(profiles.row_to_profile(r)) for r in rows]}


@router.post("/profiles", status_code=201, summary="Store a new profile version (validated); optionally activate it")
async def create_profile(
    request: Request,
    document: Annotated[dict[str, Any], Body(description="A profile document: country_code, name, note, rules")],
    activate: Annotated[bool, Query(description="make it the active version at once")] = False,
    _: set[str] = Depends(require("admin")),
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> dict[str, Any]:
    try:
        spec = profiles.parse_spec(document)
    except profiles.ProfileError as exc:
        raise HTTPException(422, {"message": "invalid routing profile", "problems": exc.problems}) from exc
    actor = await _actor(request, credentials)
    async with request.app.state.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        ref = await (await cur.execute(profiles.REFERENCE_SQL, {"country": spec.country_code,
                                                                "ids": sorted(spec.location_ids())})).fetchone()
        problems = profiles.reference_problems(ref["country_known"], list(ref["unknown_locations"]), spec.country_code)
        if problems:
            raise HTTPException(422, {"message": "invalid routing profile", "problems": problems})
        async with conn.transaction():
            row = await (await cur.execute(profiles.CREATE_SQL, profiles.create_params(spec, actor))).fetchone()
            if activate:
                row = await (await cur.execute(profiles.ACTIVATE_SQL, {"country": spec.country_code,
                                                                       "version": row["version"], "by": actor})).fetchone()
    return _dump(profiles.row_to_profile(row))


@router.post("/profiles/{country}/versions/{version}/activate", summary="Route the country's next orders with this version")
async def activate_profile(
    request: Request,
    country: CountryPath,
    version: Annotated[int, Path(ge=1)],
    _: set[str] = Depends(require("admin")),
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> dict[str, Any]:
    actor = await _actor(request, credentials)
    async with request.app.state.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        try:
            async with conn.transaction():
                row = await (await cur.execute(profiles.ACTIVATE_SQL, {"country": country.upper(), "version": version,
                                                                       "by": actor})).fetchone()
        except errors.NoDataFound as exc:
            raise HTTPException(404, f"no routing profile version {version} for {country.upper()}") from exc
    return _dump(profiles.row_to_profile(row))


@router.get("/replay", summary="Re-route a past period under another profile, side by side with what happened")
async def replay_period(
    request: Request,
    country: Annotated[str, Query(pattern=r"^[A-Za-z]{2}$")],
    start: Annotated[datetime, Query(alias="from", description="period start (ISO; UTC unless it says)")],
    end: Annotated[datetime, Query(alias="to", description="period end, exclusive")],
    profile: Annotated[str, Query(description="'ran' (each decision with its own version), N or name@N")] = "ran",
    promise_days: Annotated[float, Query(gt=0, le=30, description="transit days counted as on time")] = 2.0,
    _: set[str] = Depends(require("admin", "kpis:read")),
) -> dict[str, Any]:
    from oms.routing import replay

    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    if end <= start:
        raise HTTPException(422, "'to' must be after 'from'")
    if (end - start).days > 92:
        raise HTTPException(422, "replay at most 92 days per request")

    def work(conn) -> dict[str, Any]:
        target = replay.parse_profile_ref(conn, country.upper(), profile)
        result = replay.replay(conn, country, start, end, target, promise_days=promise_days)
        body = result.as_dict()
        body["comparison"] = [{"figure": f, "recorded": a, "replay": b} for f, a, b in replay.comparison_rows(result)]
        return body

    try:
        return await run_sync(request, work)
    except profiles.ProfileNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
