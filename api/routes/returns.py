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
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse

from api.auth import ensure_store, require
from api.db import run_sync
from oms.aftersale import returns, rvp
from oms.inventory.postings import PostingConflict, PostingError

router = APIRouter(prefix="/v1/returns", tags=["returns"])
WRITE = require("store", "erp:write")


def _create(conn: psycopg.Connection, req: returns.ReturnRequest, kind: str) -> returns.ReturnResult:
    result = returns.create_return(conn, req, kind=kind)
    if kind == "home" and result.created:
        rvp.queue_pickup(conn, result.return_id)
        result = returns.ReturnResult(result.return_id, True, returns.describe(conn, result.return_id))
    return result


async def _answer(request: Request, req: returns.ReturnRequest, kind: str, scopes: set[str]) -> JSONResponse:
    ensure_store(scopes, req.store_id)
    try:
        result = await run_sync(request, lambda conn: _create(conn, req, kind))
    except returns.ReturnError as exc:
        raise HTTPException(exc.status, exc.as_dict()) from exc
    except (PostingError, PostingConflict) as exc:
        raise HTTPException(422, {"code": "posting_refused", "message": str(exc)}) from exc
    # committed (a sellable unit is back on the shelf): answer once this process's ATP cache has
    # dropped what changed, so the store's next look-up here sees it (ADR 9)
    await request.app.state.atp_cache.barrier()
    return JSONResponse(result.body, status_code=201 if result.created else 200)


@router.post("", summary="Record a return (or exchange) at a store", status_code=201)
async def create_return(request: Request, body: returns.ReturnRequest,
                        scopes: set[str] = Depends(WRITE)) -> JSONResponse:
    return await _answer(request, body, "store", scopes)


@router.post("/pickups", summary="A return from home: book a Clickpost reverse pickup to the store", status_code=201)
async def create_pickup_return(request: Request, body: returns.ReturnRequest,
                               scopes: set[str] = Depends(WRITE)) -> JSONResponse:
    if body.exchange:
        raise HTTPException(422, {"code": "exchange_not_supported", "message": "exchanges are made in store"})
    return await _answer(request, body, "home", scopes)


@router.get("/{return_id}", summary="One return: lines, refund, exchange, reverse pickup")
async def get_return(request: Request, return_id: Annotated[int, Path(ge=1)],
                     _: set[str] = Depends(require("orders:read", "store", "erp:write"))) -> JSONResponse:
    def read(conn: psycopg.Connection):
        if conn.execute("SELECT 1 FROM oms.customer_return WHERE return_id = %s", (return_id,)).fetchone() is None:
            return None
        return returns.describe(conn, return_id)

    body = await run_sync(request, read)
    if body is None:
        raise HTTPException(404, f"unknown return {return_id}")
    return JSONResponse(body)
