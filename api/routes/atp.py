"""Available-to-promise look-ups, live: the last dbt snapshot plus everything recorded since.

Each answer is one statement that Postgres turns into JSON itself: one round trip per look-up,
and no Python-side row-to-dict-to-JSON work on the hot path. The live part comes from
oms.atp_store_live / oms.atp_country_live (sql/004_inventory_ledger.sql): ERP movements posted
after the snapshot, active reservations, shipped lines the ERP has not posted yet and restocked
returns, so an ERP movement or a new reservation shows in the very next request.

Answers are kept in the process's answer cache (api/atp_cache.py) and dropped when Postgres
NOTIFYs a change to their SKU: a look-up that hits costs no round trip at all, and the cache
answers only what these statements answered (docs/adr/0009-atp-answer-cache.md).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.atp_cache import AtpCache
from api.auth import Caller, require
from api.deps import AnswerCache, Pool
from api.errors import ApiError, responses
from api.models import AtpBatch, AtpPage, SkuAtp
from api.paging import decode_cursor, encode_cursor
from api.responses import RawJSONResponse
from oms.tokens import grants

router = APIRouter(prefix="/v1/atp", tags=["atp"])

MAX_BATCH_SKUS = 1000
CountryParam = Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$", description="ISO country code, e.g. AE")]
StoreParam = Annotated[str | None, Query(min_length=1, max_length=20, description="ERP location code")]

SNAPSHOT_SQL = """(SELECT json_build_object('snapshot_id', snapshot_id, 'built_at', built_at, 'stock_as_of', stock_as_of)
                   FROM oms.atp_snapshot ORDER BY snapshot_id DESC LIMIT 1)"""



def json_object(fields: list[tuple[str, str, str]]) -> str:
    """SQL for a JSON object built by concatenation: about half the cost of json_build_object
    (measured on ~100 store rows per SKU). Each value is rendered JSON-safe by its kind: text and
    timestamps through to_json (quoted, escaped), numbers and booleans as their text, NULL as null."""
    render = {
        "text": "coalesce(to_json({})::text, 'null')",
        "number": "coalesce(({})::text, 'null')",
        "bool": "coalesce(({})::text, 'null')",
        "time": "coalesce(to_json({})::text, 'null')",
        "raw": "{}",  # already JSON text
    }
    parts = [f"'{'{' if i == 0 else ','}\"{key}\":' || {render[kind].format(expr)}"
             for i, (key, expr, kind) in enumerate(fields)]
    return "(" + " || ".join(parts) + " || '}')"


def json_array(element: str, source: str, order_by: str) -> str:
    """SQL for a JSON array of `element` over `source` (a FROM … WHERE …), in order; [] when empty."""
    return f"coalesce((SELECT '[' || string_agg({element}, ',' ORDER BY {order_by}) || ']' {source}), '[]')"


# Two levels of detail. Building JSON costs Postgres 1-2 µs per value on the 2-CPU machine the
# benchmark ran on, and a SKU has ~100 store rows, so the default answer carries what a look-up
# needs and `detail=full` adds how each number was reached (bench/atp_lookup.py).
_STORE_SUMMARY = [("store_id", "s.store_id", "text"), ("atp_qty", "s.atp_qty", "number"),
                  ("on_hand_qty", "s.on_hand_qty", "number"), ("channel_eligible", "s.is_channel_eligible", "bool"),
                  ("pickup_enabled", "s.pickup_enabled", "bool")]
_STORE_FULL = [
    ("store_id", "s.store_id", "text"), ("location_type", "s.location_type", "text"),
    ("magento_source_code", "s.magento_source_code", "text"), ("ship_from_store", "s.ship_from_store", "bool"),
    ("pickup_enabled", "s.pickup_enabled", "bool"), ("channel_eligible", "s.is_channel_eligible", "bool"),
    ("atp_qty", "s.atp_qty", "number"), ("on_hand_qty", "s.on_hand_qty", "number"),
    ("reserved_qty", "s.reserved_qty", "number"), ("awaiting_erp_qty", "s.awaiting_erp_qty", "number"),
    ("restocked_qty", "s.restocked_qty", "number"), ("safety_stock_qty", "s.safety_stock_qty", "number"),
    ("snapshot_on_hand_qty", "s.snapshot_on_hand_qty", "number"), ("movement_qty", "s.movement_qty", "number"),
    ("snapshot_as_of", "s.snapshot_as_of", "time"), ("stock_as_of", "s.stock_as_of", "time"),
]
_COUNTRY_SUMMARY = [("country_code", "c.country_code", "text"), ("channel_code", "c.channel_code", "text"),
                    ("atp_qty", "c.atp_qty", "number"), ("on_hand_qty", "c.on_hand_qty", "number"),
                    ("stock_as_of", "c.stock_as_of", "time")]
_COUNTRY_FULL = [*_COUNTRY_SUMMARY[:4], ("atp_before_buffer", "c.atp_before_buffer", "number"),
                 ("unallocated_reserved_qty", "c.unallocated_reserved_qty", "number"),
                 ("buffer_qty", "c.buffer_qty", "number"),
                 ("eligible_location_count", "c.eligible_location_count", "number"), _COUNTRY_SUMMARY[4]]
STORE_FIELDS = {"summary": _STORE_SUMMARY, "full": _STORE_FULL}
STORE_JSON = {detail: json_object(fields) for detail, fields in STORE_FIELDS.items()}
COUNTRY_FIELDS = {"summary": _COUNTRY_SUMMARY, "full": _COUNTRY_FULL}
DETAILS = tuple(STORE_JSON)
DEFAULT_VARIANT = "summary"  # the cache key of the unfiltered summary answer; others: (country, store, detail)
DetailParam = Annotated[Literal["summary", "full"], Query(
    description="summary: ATP and on hand per country and store; full: also reserved, awaiting the ERP, "
                "restocked, safety stock, the snapshot and the movements since")]

COUNTRY_FILTER = "(%(country)s::text IS NULL OR {alias}.country_code = %(country)s)"

def _skus_sql(detail: str) -> str:
    """The single-SKU answer, for one SKU or (warming the cache) many: a row per SKU asked (sku NULL
    when no SKU is known), with whether the country and store filters name known ones."""
    return f"""
WITH known AS (
    SELECT (%(country)s::text IS NULL OR EXISTS (SELECT 1 FROM ref.channel WHERE country_code = %(country)s)) AS country_known,
           (%(store)s::text IS NULL OR EXISTS (SELECT 1 FROM ref.location WHERE store_id = %(store)s)) AS store_known
),
requested AS (
    SELECT r.sku FROM ref.sku r WHERE r.sku = ANY (%(skus)s::text[])
),
stores AS MATERIALIZED (
    SELECT * FROM oms.atp_store_live(%(skus)s::text[]) s
    WHERE {COUNTRY_FILTER.format(alias="s")} AND (%(store)s::text IS NULL OR s.store_id = %(store)s)
),
store_lists AS (
    SELECT s.sku, s.country_code, '[' || string_agg({STORE_JSON[detail]}, ',' ORDER BY s.store_id) || ']' AS stores
    FROM stores s GROUP BY s.sku, s.country_code
),
countries AS (
    SELECT c.sku, '[' || string_agg({json_object([*COUNTRY_FIELDS[detail],
                                                  ("stores", "coalesce(sl.stores, '[]')", "raw")])},
                                    ',' ORDER BY c.country_code) || ']' AS countries
    FROM oms.atp_country_live(%(skus)s::text[]) c
    LEFT JOIN store_lists sl ON sl.sku = c.sku AND sl.country_code = c.country_code
    WHERE {COUNTRY_FILTER.format(alias="c")} AND (%(store)s::text IS NULL OR sl.sku IS NOT NULL)
    GROUP BY c.sku
)
SELECT known.country_known, known.store_known, k.sku,
    '{{"sku":' || to_json(k.sku)::text
    || ',"as_of":' || to_json(now())::text
    || ',"snapshot":' || coalesce({SNAPSHOT_SQL}::text, 'null')
    || ',"countries":' || coalesce(co.countries, '[]')
    || '}}'
FROM known
LEFT JOIN (requested k LEFT JOIN countries co ON co.sku = k.sku) ON true
"""


SKUS_SQL = {detail: _skus_sql(detail) for detail in DETAILS}
WARM_CHUNK = 250


async def warm_cache(cache: AtpCache) -> int:
    """Fill the cache with the default answers of every SKU: `GET /v1/atp/{sku}` with no filters,
    and its item in an unfiltered summary `POST /v1/atp/query`."""
    pool = cache.pool
    async with pool.connection() as conn:
        skus = [sku for (sku,) in await (await conn.execute("SELECT sku FROM ref.sku ORDER BY sku")).fetchall()]
    warmed = 0
    for start in range(0, len(skus), WARM_CHUNK):
        if not cache.enabled:
            break
        chunk = skus[start:start + WARM_CHUNK]
        ticket = cache.begin()
        async with pool.connection() as conn:
            rows = await (await conn.execute(
                SKUS_SQL["summary"], {"skus": chunk, "country": None, "store": None})).fetchall()
            items = await (await conn.execute(
                BATCH_SQL[False, "summary"], {"skus": chunk, "country": None, "stores": None})).fetchall()
        for _, _, sku, body in rows:
            if sku is not None:
                warmed += cache.put(sku, DEFAULT_VARIANT, body.encode(), ticket)
        for _, as_of, snapshot, sku, item in items:
            if item is not None:
                cache.put(sku, BATCH_DEFAULT_VARIANT, (as_of, snapshot, item.encode()), ticket)
        await asyncio.sleep(0)  # look-ups go first
    return warmed


def _batch_sql(with_stores: bool, detail: str) -> str:
    """One row per distinct SKU asked: whether it is known, and its item of the batch answer
    (NULL when unknown); each row also says when it was read, the snapshot, and whether the
    country filter names a known country. The answer document is put together by `_batch_answer`."""
    stores_cte = f""",
stores AS (
    SELECT s.sku, '[' || string_agg({json_object([("country_code", "s.country_code", "text"), *STORE_FIELDS[detail]])},
                                    ',' ORDER BY s.store_id) || ']' AS stores
    FROM oms.atp_store_live(%(skus)s::text[]) s
    WHERE {COUNTRY_FILTER.format(alias="s")} AND (%(stores)s::text[] IS NULL OR s.store_id = ANY (%(stores)s::text[]))
    GROUP BY s.sku
)""" if with_stores else ""
    stores_field = [("stores", "coalesce(st.stores, '[]')", "raw")] if with_stores else []
    stores_join = "LEFT JOIN stores st ON st.sku = k.sku" if with_stores else ""
    return f"""
WITH requested AS (
    SELECT DISTINCT u.sku, EXISTS (SELECT 1 FROM ref.sku r WHERE r.sku = u.sku) AS known
    FROM unnest(%(skus)s::text[]) AS u (sku)
),
countries AS (
    SELECT c.sku, '[' || string_agg({json_object(COUNTRY_FIELDS[detail])}, ',' ORDER BY c.country_code) || ']'
           AS countries
    FROM oms.atp_country_live(%(skus)s::text[]) c
    WHERE {COUNTRY_FILTER.format(alias="c")}
    GROUP BY c.sku
){stores_cte}
SELECT (%(country)s::text IS NULL OR EXISTS (SELECT 1 FROM ref.channel WHERE country_code = %(country)s)),
    to_json(now())::text, coalesce({SNAPSHOT_SQL}::text, 'null'), k.sku,
    CASE WHEN k.known THEN {json_object([("sku", "k.sku", "text"), ("countries", "coalesce(co.countries, '[]')", "raw"),
                                        *stores_field])} END
FROM requested k LEFT JOIN countries co ON co.sku = k.sku {stores_join}
"""


BATCH_SQL = {(stores, detail): _batch_sql(stores, detail) for stores in (False, True) for detail in DETAILS}

LIST_SQL = f"""
WITH page_keys AS (
    SELECT s.sku, s.store_id FROM marts.fct_atp_store s
    WHERE {COUNTRY_FILTER.format(alias="s")}
      AND (%(store)s::text IS NULL OR s.store_id = %(store)s)
      AND (%(after_sku)s::text IS NULL OR (s.sku, s.store_id) > (%(after_sku)s, %(after_store)s))
    ORDER BY s.sku, s.store_id
    LIMIT %(limit)s + 1
),
page AS (
    SELECT s.* FROM oms.atp_store_live(ARRAY(SELECT DISTINCT sku FROM page_keys)) s
    JOIN (SELECT sku, store_id FROM page_keys ORDER BY sku, store_id LIMIT %(limit)s) k
      ON k.sku = s.sku AND k.store_id = s.store_id
)
SELECT json_build_object(
    'as_of', now(),
    'snapshot', {SNAPSHOT_SQL},
    'items', {json_array(json_object([("sku", "s.sku", "text"), ("country_code", "s.country_code", "text"),
                                      *STORE_FIELDS["full"]]), "FROM page s", "s.sku, s.store_id")}::json,
    'has_more', (SELECT count(*) FROM page_keys) > %(limit)s,
    'last_key', (SELECT json_build_array(sku, store_id) FROM page ORDER BY sku DESC, store_id DESC LIMIT 1)
)::text
"""


class AtpQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    skus: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=MAX_BATCH_SKUS, description=f"1 to {MAX_BATCH_SKUS} SKUs (duplicates answered once)")
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$", description="only this country")
    include_stores: bool = Field(default=False, description="add the per-store breakdown of each SKU")
    store_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=20)]] | None = Field(
        default=None, max_length=1000, description="per-store breakdown for these stores only (implies include_stores)")
    detail: Literal["summary", "full"] = Field(default="summary", description="as for GET /v1/atp/{sku}")


@router.get("/{sku}", summary="Live ATP of one SKU: per-country totals and per-store breakdown", response_model=SkuAtp,
            responses=responses(**{"404": "unknown SKU, country or store"}))
async def atp_for_sku(
    pool: Pool,
    cache: AnswerCache,
    sku: Annotated[str, Path(min_length=1, max_length=64)],
    country: CountryParam = None,
    store_id: StoreParam = None,
    detail: DetailParam = "summary",
    _: Caller = Depends(require("stock:read")),
) -> RawJSONResponse:
    """Served from the process's answer cache when it holds the SKU (kept in step with the ledger
    by NOTIFY: docs/adr/0009-atp-answer-cache.md), else from Postgres, then cached. Either way
    `as_of` is when the answer was read from the ledger, and nothing has changed it since."""
    country = country.upper() if country else None
    variant = DEFAULT_VARIANT if country is None and store_id is None and detail == "summary" else (
        country, store_id, detail)
    body = cache.get(sku, variant)
    if body is not None:
        cache.stats["hits"] += 1
        return RawJSONResponse(body)
    cache.stats["misses"] += 1
    ticket = cache.begin()
    params = {"skus": [sku], "country": country, "store": store_id}
    async with pool.connection() as conn:
        country_known, store_known, known_sku, text = await (await conn.execute(SKUS_SQL[detail], params)).fetchone()
    if known_sku is None:
        raise ApiError(404, f"unknown sku '{sku}'", code="unknown_sku")
    if not country_known:
        raise ApiError(404, f"unknown country '{country}'", code="unknown_country")
    if not store_known:
        raise ApiError(404, f"unknown store '{store_id}'", code="unknown_store")
    body = text.encode()
    cache.put(sku, variant, body, ticket)
    return RawJSONResponse(body)


BATCH_DEFAULT_VARIANT = "batch"  # the cache key of a SKU's item in an unfiltered summary batch answer


def _batch_answer(parts: list[tuple[str, str, bytes]], unknown: list[str], read: tuple[str, str] | None) -> bytes:
    """The batch document from its items (as_of, snapshot, item JSON) and the statement's own
    (as_of, snapshot) if it ran; items and unknown SKUs in SKU order. `as_of` is the earliest read
    among the items: each was current then and nothing has changed it since (an item read before
    a change is dropped from the cache when the change lands)."""
    as_of, snapshot = min([(p[0], p[1]) for p in parts] + ([read] if read else []))
    return b"".join([
        b'{"as_of":', as_of.encode(), b',"snapshot":', snapshot.encode(), b',"items":[',
        b",".join(p[2] for p in parts), b'],"unknown_skus":', json.dumps(unknown).encode(), b"}"])


@router.post("/query", summary=f"Live ATP of up to {MAX_BATCH_SKUS} SKUs in one call", response_model=AtpBatch,
             responses=responses(**{"404": "unknown country"}))
async def atp_query(
    pool: Pool,
    cache: AnswerCache,
    query: AtpQuery,
    _: Caller = Depends(require("stock:read")),
) -> RawJSONResponse:
    """Per-country totals of each SKU (and, on request, the per-store breakdown). SKUs the
    platform does not know are listed in `unknown_skus` instead of failing the whole batch.
    Items of unfiltered summary batches come from the process's answer cache where it has them."""
    country = query.country.upper() if query.country else None
    with_stores = query.include_stores or query.store_ids is not None
    cacheable = country is None and not with_stores and query.detail == "summary"
    skus = sorted(dict.fromkeys(query.skus))
    found: dict[str, tuple[str, str, bytes]] = {}
    if cacheable:
        for sku in skus:
            if (item := cache.get(sku, BATCH_DEFAULT_VARIANT)) is not None:
                found[sku] = item
        cache.stats["hits"] += len(found)
    unknown: list[str] = []
    read = None
    missing = [sku for sku in skus if sku not in found]
    if missing:
        cache.stats["misses"] += len(missing)
        ticket = cache.begin()
        params = {"skus": missing, "country": country, "stores": query.store_ids}
        async with pool.connection() as conn:
            rows = await (await conn.execute(BATCH_SQL[with_stores, query.detail], params)).fetchall()
        if not rows[0][0]:
            raise ApiError(404, f"unknown country '{query.country}'", code="unknown_country")
        read = (rows[0][1], rows[0][2])
        for _, as_of, snapshot, sku, item in rows:
            if item is None:
                unknown.append(sku)
                continue
            found[sku] = part = (as_of, snapshot, item.encode())
            if cacheable:
                cache.put(sku, BATCH_DEFAULT_VARIANT, part, ticket)
    return RawJSONResponse(_batch_answer([found[sku] for sku in skus if sku in found], sorted(unknown), read))


@router.get("", summary="Live ATP positions per store and SKU, paged by cursor", response_model=AtpPage,
            responses=responses(**{"400": "a cursor this API did not hand out"}))
async def atp_positions(
    pool: Pool,
    country: CountryParam = None,
    store_id: StoreParam = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor from the previous page")] = None,
    _: Caller = Depends(require("stock:read")),
) -> dict:
    after_sku, after_store = (str(part) for part in decode_cursor(cursor, 2)) if cursor else (None, None)
    params = {"country": country.upper() if country else None, "store": store_id, "after_sku": after_sku,
              "after_store": after_store, "limit": limit}
    async with pool.connection() as conn:
        (body,) = await (await conn.execute(LIST_SQL, params)).fetchone()
    page = json.loads(body)
    last_key = page.pop("last_key")
    page["next_cursor"] = encode_cursor(last_key) if page.pop("has_more") and last_key else None
    return page


class CachedAnswers:
    """ASGI middleware in front of the app: a `GET /v1/atp/{sku}` with no query string whose bearer
    token and default answer are both in the process's cache is answered with the cached bytes,
    without FastAPI's routing, parameter parsing and dependencies (they cost more than the look-up:
    bench/atp_lookup.py). It serves only what `atp_for_sku` itself put in the cache, for a token
    the `require` check verified and the cache still holds; everything else — a miss, a filter, an
    unknown or unverified token — goes on to the route, which answers (and caches) as always."""

    PREFIX = "/v1/atp/"

    def __init__(self, app) -> None:
        self.app = app
        self._route = None

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]
                and scope["path"].startswith(self.PREFIX)):
            cache: AtpCache | None = getattr(scope["app"].state, "atp_cache", None)
            body = self._hit(cache, scope) if cache is not None and cache.enabled else None
            if body is not None:
                cache.stats["hits"] += 1
                if self._route is None:
                    self._route = next(r for r in scope["app"].routes if getattr(r, "path", None) == "/v1/atp/{sku}")
                scope["route"] = self._route  # for the metrics: the same route template as the route's own answers
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _hit(self, cache: AtpCache, scope) -> bytes | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return None
                verified = cache.tokens.get(token)
                if verified is None or verified[2] is None or not grants(verified[2].scopes, "stock:read"):
                    return None
                return cache.get(scope["path"][len(self.PREFIX):], DEFAULT_VARIANT)
        return None
