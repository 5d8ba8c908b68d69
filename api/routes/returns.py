"""Returns and exchanges (store staff / POS: scope `store`; the ERP/POS token with `erp:write` too).

* POST /v1/returns: a return at a store. Validated against what Magento shipped (minus earlier
  returns); sellable units are back in the store's ATP at once; Magento gets a comment and an
  offline credit memo through the aftersale_magento_sync DAG. `exchange` lines make it an
  exchange: no refund, a replacement order routed with this store first. Idempotent on
  client_return_id: the same request again answers 200 with the stored return, a different one 409.
  Any refusal (4xx) changes nothing. A `store` token records returns at the stores it names
  only (403 for any other store_id); the ERP/POS token (erp:write) at any store.
* POST /v1/returns/pickups: a return from home: a Clickpost reverse pickup (RVP) is booked.
* GET /v1/returns/{return_id}.
docs/returns.md.
"""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool

from api.auth import Caller, ensure_store, require
from api.db import run_sync
from api.deps import AnswerCache, Pool
from api.errors import ApiError, responses
from api.models import Return
from api.params import ID_MAX
from oms.aftersale import returns, rvp

router = APIRouter(prefix="/v1/returns", tags=["returns"])
WRITE = require("store", "erp:write")


def _create(conn: psycopg.Connection, req: returns.ReturnRequest, kind: str) -> returns.ReturnResult:
    result = returns.create_return(conn, req, kind=kind)
    if kind == "home" and result.created:
        rvp.queue_pickup(conn, result.return_id)
        result = returns.ReturnResult(result.return_id, True, returns.describe(conn, result.return_id))
    return result


async def _answer(pool: AsyncConnectionPool, cache, req: returns.ReturnRequest, kind: str,
                  caller: Caller) -> JSONResponse:
    ensure_store(caller, req.store_id)   # a store token acts for its own stores only
    result = await run_sync(pool, lambda conn: _create(conn, req, kind))
    # committed (a sellable unit is back on the shelf): answer once this process's ATP cache has
    # dropped what changed, so the store's next look-up here sees it (ADR 9)
    await cache.barrier()
    return JSONResponse(result.body, status_code=201 if result.created else 200)


REFUSALS = responses(**{"404": "unknown order", "409": "client_return_id recorded before with other content",
                         "422": "not returnable as asked (error.code says why), or an invalid body"})


@router.post("", summary="Record a return (or exchange) at a store", status_code=201, response_model=Return,
             responses={200: {"model": Return, "description": "the same request again: the stored return"}, **REFUSALS})
async def create_return(pool: Pool, cache: AnswerCache, body: returns.ReturnRequest,
                        caller: Caller = Depends(WRITE)) -> JSONResponse:
    return await _answer(pool, cache, body, "store", caller)


@router.post("/pickups", summary="A return from home: book a Clickpost reverse pickup to the store", status_code=201,
             response_model=Return,
             responses={200: {"model": Return, "description": "the same request again: the stored return"}, **REFUSALS})
async def create_pickup_return(pool: Pool, cache: AnswerCache, body: returns.ReturnRequest,
                               caller: Caller = Depends(WRITE)) -> JSONResponse:
    if body.exchange:
        raise ApiError(422, "exchanges are made in store", code="exchange_not_supported")
    return await _answer(pool, cache, body, "home", caller)


@router.get("/{return_id:int}", summary="One return: lines, refund, exchange, reverse pickup", response_model=Return,
            responses=responses(**{"404": "unknown return"}))
async def get_return(pool: Pool, return_id: Annotated[int, Path(ge=1, le=ID_MAX)],
                     _: Caller = Depends(require("orders:read", "store", "erp:write"))) -> JSONResponse:
    def read(conn: psycopg.Connection):
        if conn.execute("SELECT 1 FROM oms.customer_return WHERE return_id = %s", (return_id,)).fetchone() is None:
            return None
        return returns.describe(conn, return_id)

    body = await run_sync(pool, read)
    if body is None:
        raise ApiError(404, f"unknown return {return_id}", code="unknown_return")
    return JSONResponse(body)
