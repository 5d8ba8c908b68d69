"""Available-to-promise look-ups: per SKU (country totals + store breakdown) and paged positions.

Each answer is one statement that Postgres turns into JSON itself: one round trip per look-up,
and no Python-side row-to-dict-to-JSON work on the hot path.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from api.auth import require
from api.responses import RawJSONResponse

router = APIRouter(prefix="/v1/atp", tags=["atp"])

CountryParam = Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$", description="ISO country code, e.g. AE")]
StoreParam = Annotated[str | None, Query(min_length=1, max_length=20, description="ERP location code")]

SNAPSHOT_SQL = """(SELECT json_build_object('snapshot_id', snapshot_id, 'built_at', built_at, 'stock_as_of', stock_as_of)
                   FROM oms.atp_snapshot ORDER BY snapshot_id DESC LIMIT 1)"""

STORE_JSON = """json_build_object(
    'store_id', s.store_id, 'location_type', s.location_type, 'magento_source_code', s.magento_source_code,
    'ship_from_store', s.ship_from_store, 'pickup_enabled', s.pickup_enabled,
    'channel_eligible', s.is_channel_eligible, 'on_hand_qty', s.on_hand_qty,
    'safety_stock_qty', s.safety_stock_qty, 'atp_qty', s.atp_qty, 'stock_as_of', s.stock_as_of)"""

SKU_SQL = f"""
WITH known AS (
    SELECT (SELECT count(*) FROM ref.sku WHERE sku = %(sku)s) AS sku_known,
           (%(country)s::text IS NULL OR EXISTS (SELECT 1 FROM ref.channel WHERE country_code = %(country)s)) AS country_known,
           (%(store)s::text IS NULL OR EXISTS (SELECT 1 FROM ref.location WHERE store_id = %(store)s)) AS store_known
)
SELECT known.sku_known > 0, known.country_known, known.store_known, json_build_object(
    'sku', %(sku)s,
    'as_of', now(),
    'snapshot', {SNAPSHOT_SQL},
    'countries', coalesce((
        SELECT json_agg(json_build_object(
            'country_code', c.country_code, 'channel_code', c.channel_code,
            'atp_qty', c.atp_qty, 'on_hand_qty', c.on_hand_qty, 'buffer_qty', c.buffer_qty,
            'eligible_location_count', c.eligible_location_count, 'stock_as_of', c.stock_as_of,
            'stores', coalesce((
                SELECT json_agg({STORE_JSON} ORDER BY s.store_id)
                FROM marts.fct_atp_store s
                WHERE s.sku = c.sku AND s.country_code = c.country_code
                  AND (%(store)s::text IS NULL OR s.store_id = %(store)s)), '[]'::json)
        ) ORDER BY c.country_code)
        FROM marts.fct_atp_country c
        WHERE c.sku = %(sku)s
          AND (%(country)s::text IS NULL OR c.country_code = %(country)s)
          AND (%(store)s::text IS NULL OR EXISTS (
                SELECT 1 FROM marts.fct_atp_store s2
                WHERE s2.sku = c.sku AND s2.country_code = c.country_code AND s2.store_id = %(store)s))
    ), '[]'::json)
)::text
FROM known
"""

LIST_SQL = f"""
WITH page AS (
    SELECT s.* FROM marts.fct_atp_store s
    WHERE (%(country)s::text IS NULL OR s.country_code = %(country)s)
      AND (%(store)s::text IS NULL OR s.store_id = %(store)s)
      AND (%(after_sku)s::text IS NULL OR (s.sku, s.store_id) > (%(after_sku)s, %(after_store)s))
    ORDER BY s.sku, s.store_id
    LIMIT %(limit)s + 1
)
SELECT json_build_object(
    'as_of', now(),
    'snapshot', {SNAPSHOT_SQL},
    'items', coalesce((SELECT json_agg(json_build_object('sku', s.sku, 'country_code', s.country_code)::jsonb
                                         || {STORE_JSON}::jsonb ORDER BY s.sku, s.store_id)
                       FROM (SELECT * FROM page ORDER BY sku, store_id LIMIT %(limit)s) s), '[]'::json),
    'has_more', (SELECT count(*) FROM page) > %(limit)s,
    'last_key', (SELECT json_build_array(sku, store_id) FROM
                    (SELECT sku, store_id FROM page ORDER BY sku, store_id LIMIT %(limit)s) p
                 ORDER BY sku DESC, store_id DESC LIMIT 1)
)::text
"""


def _encode_cursor(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        sku, store = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(sku), str(store)
    except (ValueError, TypeError) as exc:
        raise HTTPException(400, "invalid cursor: pass back the next_cursor of the previous page") from exc


@router.get("/{sku}", summary="ATP of one SKU: per-country totals and per-store breakdown")
async def atp_for_sku(
    request: Request,
    sku: Annotated[str, Path(min_length=1, max_length=64)],
    country: CountryParam = None,
    store_id: StoreParam = None,
    _: set[str] = Depends(require("stock:read")),
) -> RawJSONResponse:
    params = {"sku": sku, "country": country.upper() if country else None, "store": store_id}
    async with request.app.state.pool.connection() as conn:
        sku_known, country_known, store_known, body = await (await conn.execute(SKU_SQL, params)).fetchone()
    if not sku_known:
        raise HTTPException(404, f"unknown sku '{sku}'")
    if not country_known:
        raise HTTPException(404, f"unknown country '{country}'")
    if not store_known:
        raise HTTPException(404, f"unknown store '{store_id}'")
    return RawJSONResponse(body)


@router.get("", summary="ATP positions per store and SKU, paged by cursor")
async def atp_positions(
    request: Request,
    country: CountryParam = None,
    store_id: StoreParam = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor from the previous page")] = None,
    _: set[str] = Depends(require("stock:read")),
) -> dict:
    after_sku, after_store = _decode_cursor(cursor) if cursor else (None, None)
    params = {"country": country.upper() if country else None, "store": store_id, "after_sku": after_sku,
              "after_store": after_store, "limit": limit}
    async with request.app.state.pool.connection() as conn:
        (body,) = await (await conn.execute(LIST_SQL, params)).fetchone()
    page = json.loads(body)
    last_key = page.pop("last_key")
    page["next_cursor"] = _encode_cursor(last_key) if page.pop("has_more") and last_key else None
    return page
