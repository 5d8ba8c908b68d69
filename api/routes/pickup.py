"""Click & collect: which pickup stores really hold the quantity, nearest first.

Magento's own pickup-location search only checks that the SKU is assigned to a source, not that
the store has the quantity (oms-anchors.md); this answers from live store-level ATP (oms.atp_store_live: the last snapshot
plus every movement, reservation and posting recorded since), so an order that just reserved the
last unit at a store takes that store off the list at once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import Caller, require
from api.deps import Pool
from api.errors import ApiError, responses
from api.models import PickupLocations
from api.responses import RawJSONResponse

router = APIRouter(prefix="/v1/pickup-locations", tags=["click & collect"])

PICKUP_SQL = """
WITH known AS (
    SELECT EXISTS (SELECT 1 FROM ref.sku WHERE sku = %(sku)s) AS sku_known,
           (%(country)s::text IS NULL OR EXISTS (SELECT 1 FROM ref.channel WHERE country_code = %(country)s))
               AS country_known
),
candidates AS (
    SELECT l.store_id, l.name, l.country_code, l.address_line, l.city, l.postcode, l.phone,
           l.latitude, l.longitude, l.magento_source_code, s.atp_qty,
           CASE WHEN %(lat)s::float8 IS NULL OR l.latitude IS NULL THEN NULL
                ELSE 2 * 6371 * asin(sqrt(
                    power(sin(radians(l.latitude - %(lat)s) / 2), 2)
                    + cos(radians(%(lat)s)) * cos(radians(l.latitude))
                      * power(sin(radians(l.longitude - %(lon)s) / 2), 2)))
           END AS distance_km
    FROM ref.location l
    JOIN oms.atp_store_live(ARRAY[%(sku)s]::text[]) s ON s.store_id = l.store_id
    WHERE l.active AND l.pickup_enabled AND s.atp_qty >= %(qty)s
      AND (%(country)s::text IS NULL OR l.country_code = %(country)s)
)
SELECT known.sku_known, known.country_known, json_build_object(
    'sku', %(sku)s, 'qty', %(qty)s, 'as_of', now(),
    'locations', coalesce((
        SELECT json_agg(json_build_object(
            'store_id', c.store_id, 'name', c.name, 'country_code', c.country_code,
            'address_line', c.address_line, 'city', c.city, 'postcode', c.postcode, 'phone', c.phone,
            'latitude', c.latitude, 'longitude', c.longitude, 'magento_source_code', c.magento_source_code,
            'atp_qty', c.atp_qty, 'distance_km', round(c.distance_km::numeric, 2))
            ORDER BY c.distance_km NULLS LAST, c.store_id)
        FROM candidates c
        WHERE %(radius)s::float8 IS NULL OR c.distance_km <= %(radius)s), '[]'::json)
)::text
FROM known
"""


@router.get("", summary="Pickup-enabled stores holding the quantity, nearest first", response_model=PickupLocations,
            responses=responses(**{"400": "lat without lon, or radius_km without both", "404": "unknown SKU or country"}))
async def pickup_locations(
    pool: Pool,
    sku: Annotated[str, Query(min_length=1, max_length=64)],
    qty: Annotated[float, Query(gt=0, le=10_000)] = 1,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    radius_km: Annotated[float | None, Query(gt=0, le=20_000)] = None,
    _: Caller = Depends(require("stock:read")),
) -> RawJSONResponse:
    if (lat is None) != (lon is None):
        raise ApiError(400, "give both lat and lon, or neither", code="invalid_position")
    if radius_km is not None and lat is None:
        raise ApiError(400, "radius_km needs lat and lon", code="invalid_position")
    params = {"sku": sku, "qty": qty, "country": country.upper() if country else None, "lat": lat, "lon": lon,
              "radius": radius_km}
    async with pool.connection() as conn:
        sku_known, country_known, body = await (await conn.execute(PICKUP_SQL, params)).fetchone()
    if not sku_known:
        raise ApiError(404, f"unknown sku '{sku}'", code="unknown_sku")
    if not country_known:
        raise ApiError(404, f"unknown country '{country}'", code="unknown_country")
    return RawJSONResponse(body)
