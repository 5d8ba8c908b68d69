"""Liveness and readiness, open (no token): used by `oms up` and load balancers."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health", summary="Is the API up and the warehouse reachable?")
async def health(request: Request) -> JSONResponse:
    try:
        async with request.app.state.pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 — any failure means not ready
        return JSONResponse({"status": "unavailable", "warehouse": str(exc)[:200]}, status_code=503)
    return JSONResponse({"status": "ok", "warehouse": "ok"})
