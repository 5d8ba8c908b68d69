"""The FastAPI application: `uvicorn api.app:create_app --factory`."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.airflow_events import AirflowEvents
from api.atp_cache import AtpCache
from api.db import make_pool
from api.errors import document_errors, install_error_handlers
from api.guard import RequestGuard
from api.metrics import install_metrics
from api.routes import (
    atp,
    customers,
    erp,
    health,
    kpis,
    magento,
    orders,
    pickup,
    returns,
    routing,
    shipments,
    store_tasks,
)
from api.routes import pipeline as pipeline_routes
from oms import secret_guard
from oms.settings import get_settings


def create_app(dsn: str | None = None) -> FastAPI:
    # outside the local stack (OMS_ENV), never with the local stack's secrets
    secret_guard.check("the API", required=("OMS_CLICKPOST_WEBHOOK_KEY",))
    warehouse_dsn = dsn or os.environ.get("OMS_WAREHOUSE_DSN") or get_settings().warehouse_dsn

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pool = make_pool(warehouse_dsn)
        await app.state.pool.open(wait=False)
        app.state.atp_cache = AtpCache(warehouse_dsn, app.state.pool)
        app.state.atp_cache.warmer = atp.warm_cache
        # The listener gets as long to connect at start-up as a request gets for a connection
        # (OMS_API_POOL_TIMEOUT, 5 s by default); past that the API serves from Postgres while the
        # listener keeps trying.
        await app.state.atp_cache.start(wait=app.state.pool.timeout)
        app.state.airflow_events = AirflowEvents.from_env()
        yield
        await app.state.atp_cache.stop()
        await app.state.pool.close()

    app = FastAPI(
        title="OMS platform API",
        version="0.1.0",
        description="Real-time available-to-promise per store and country, for Magento and operations, and the "
        "ERP's movements in and sales postings out. Authenticate with `Authorization: Bearer <token>` (make one "
        "with `oms token create --scope stock:read`, or `--scope erp:write` for the ERP).",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(atp.router)
    app.include_router(pickup.router)
    app.include_router(orders.router)
    app.include_router(routing.router)
    app.include_router(erp.router)
    app.include_router(magento.router)
    app.include_router(kpis.router)
    app.include_router(shipments.router)
    app.include_router(returns.router)
    app.include_router(customers.router)
    app.include_router(pipeline_routes.router)
    app.include_router(store_tasks.router)
    app.add_middleware(atp.CachedAnswers)  # cached ATP answers before routing (docs/adr/0009-atp-answer-cache.md)
    # size limit and storable text before anything reads a body; the webhook keeps what arrives
    app.add_middleware(RequestGuard, raw_body_paths=[shipments.WEBHOOK_PATH])
    install_error_handlers(app)
    install_metrics(app)
    document_errors(app)
    return app
