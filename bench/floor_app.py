"""The floor for bench/atp_lookup.py: the API's own stack (the psycopg pool with the same
settings, the bearer-token check) around the cheapest possible statement, JSON built in
Postgres. Whatever an ATP look-up costs above this is the look-up itself."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request

from api.atp_cache import AtpCache
from api.auth import require
from api.db import make_pool
from api.responses import RawJSONResponse
from api.routes import health


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.pool = make_pool(os.environ["OMS_WAREHOUSE_DSN"])
    await app.state.pool.open(wait=False)
    app.state.atp_cache = AtpCache(os.environ["OMS_WAREHOUSE_DSN"], app.state.pool, warm=False)
    await app.state.atp_cache.start()
    yield
    await app.state.atp_cache.stop()
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)
app.include_router(health.router)


@app.get("/v1/floor/{sku}")
async def floor(request: Request, sku: str, _: set[str] = Depends(require("stock:read"))) -> RawJSONResponse:
    async with request.app.state.pool.connection() as conn:
        (body,) = await (await conn.execute("SELECT json_build_object('sku', %s::text)::text", (sku,))).fetchone()
    return RawJSONResponse(body)
