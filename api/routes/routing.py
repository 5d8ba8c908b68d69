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

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from psycopg import errors
from psycopg.rows import dict_row

from api.auth import Caller, require
from api.db import run_sync
from api.deps import Pool
from api.errors import ApiError, responses
from api.models import RoutingDecisions, RoutingProfiles, RoutingReplay
from api.params import INTEGER_MAX, IsoDateTime
from api.responses import RawJSONResponse
from oms.routing import profiles
from oms.routing.decisions import DECISIONS_JSON_SQL

router = APIRouter(prefix="/v1/routing", tags=["routing"])

CountryPath = Annotated[str, Path(pattern=r"^[A-Za-z]{2}$", description="ISO country code, e.g. AE")]


@router.get("/decisions/{increment_id}", summary="Every routing decision about an order, newest first, with why", response_model=RoutingDecisions,
            responses=responses(**{"404": "no routing decision for the order"}))
async def routing_decisions(
    pool: Pool,
    increment_id: Annotated[str, Path(min_length=1, max_length=50)],
    _: Caller = Depends(require("orders:read")),
) -> RawJSONResponse:
    async with pool.connection() as conn:
        count, body = await (await conn.execute(DECISIONS_JSON_SQL, {"increment_id": increment_id})).fetchone()
    if not count:
        raise ApiError(404, f"no routing decision for order '{increment_id}'", code="no_routing_decision")
    return RawJSONResponse(body)


def _dump(profile: profiles.RoutingProfile) -> dict[str, Any]:
    return profile.model_dump(mode="json")


def _actor(caller: Caller) -> str:
    """Who changed routing, for the profile's created_by / activated_by: the token's name."""
    return f"api:{caller.name}"


@router.get("/profiles", summary="Routing profile versions, newest first", response_model=RoutingProfiles)
async def list_profiles(
    pool: Pool,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None,
    active_only: bool = False,
    _: Caller = Depends(require("admin")),
) -> dict[str, Any]:
    params = {"country": country.upper() if country else None, "active_only": active_only}
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        rows = await (await cur.execute(profiles.LIST_SQL, params)).fetchall()
    return {"profiles": [_dump(profiles.row_to_profile(r)) for r in rows]}


@router.post("/profiles", status_code=201, summary="Store a new profile version (validated); optionally activate it",
             response_model=profiles.RoutingProfile,
             responses=responses(**{"422": "an invalid profile: error.details.problems lists each reason"}))
async def create_profile(
    pool: Pool,
    document: Annotated[dict[str, Any], Body(description="A profile document: country_code, name, note, rules")],
    activate: Annotated[bool, Query(description="make it the active version at once")] = False,
    caller: Caller = Depends(require("admin")),
) -> dict[str, Any]:
    spec = profiles.parse_spec(document)  # ProfileError: a 422 listing the problems
    actor = _actor(caller)
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        ref = await (await cur.execute(profiles.REFERENCE_SQL, {"country": spec.country_code,
                                                                "ids": sorted(spec.location_ids())})).fetchone()
        problems = profiles.reference_problems(ref["country_known"], list(ref["unknown_locations"]), spec.country_code)
        if problems:
            raise profiles.ProfileError(problems)
        async with conn.transaction():
            row = await (await cur.execute(profiles.CREATE_SQL, profiles.create_params(spec, actor))).fetchone()
            if activate:
                row = await (await cur.execute(profiles.ACTIVATE_SQL, {"country": spec.country_code,
                                                                       "version": row["version"], "by": actor})).fetchone()
    return _dump(profiles.row_to_profile(row))


@router.post("/profiles/{country}/versions/{version}/activate", summary="Route the country's next orders with this version",
             response_model=profiles.RoutingProfile,
             responses=responses(**{"404": "no such profile version"}))
async def activate_profile(
    pool: Pool,
    country: CountryPath,
    version: Annotated[int, Path(ge=1, le=INTEGER_MAX)],
    caller: Caller = Depends(require("admin")),
) -> dict[str, Any]:
    actor = _actor(caller)
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        try:
            async with conn.transaction():
                row = await (await cur.execute(profiles.ACTIVATE_SQL, {"country": country.upper(), "version": version,
                                                                       "by": actor})).fetchone()
        except errors.NoDataFound as exc:
            raise profiles.ProfileNotFound(f"no routing profile version {version} for {country.upper()}") from exc
    return _dump(profiles.row_to_profile(row))


@router.get("/replay", summary="Re-route a past period under another profile, side by side with what happened",
            response_model=RoutingReplay,
            responses=responses(**{"404": "no such profile version", "422": "an invalid period or profile"}))
async def replay_period(
    pool: Pool,
    country: Annotated[str, Query(pattern=r"^[A-Za-z]{2}$")],
    start: Annotated[IsoDateTime, Query(alias="from", description="period start (ISO, with its time zone)")],
    end: Annotated[IsoDateTime, Query(alias="to", description="period end, exclusive")],
    profile: Annotated[str, Query(min_length=1, max_length=100,
                                  description="'ran' (each decision with its own version), N or name@N")] = "ran",
    promise_days: Annotated[float, Query(gt=0, le=30, description="transit days counted as on time")] = 2.0,
    _: Caller = Depends(require("admin", "kpis:read")),
) -> dict[str, Any]:
    from oms.routing import replay

    if end <= start:
        raise ApiError(422, "'to' must be after 'from'", code="invalid_period")
    if (end - start).days > 92:
        raise ApiError(422, "replay at most 92 days per request", code="invalid_period")

    def work(conn) -> dict[str, Any]:
        target = replay.parse_profile_ref(conn, country.upper(), profile)   # ProfileNotFound → 404
        result = replay.replay(conn, country, start, end, target, promise_days=promise_days)
        body = result.as_dict()
        body["comparison"] = [{"figure": f, "recorded": a, "replay": b} for f, a, b in replay.comparison_rows(result)]
        return body

    return await run_sync(pool, work)
