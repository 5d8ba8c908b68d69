"""Bearer-token authentication with scopes. Verified tokens are cached per process for a short
while (OMS_TOKEN_CACHE_SECONDS, default 10 s) and dropped at once when a token is created,
changed or revoked: the database NOTIFYs every change (api/atp_cache.py,
sql/010_atp_change_notify.sql); while that listener is down every request asks the database."""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from oms.tokens import acts_for_store, grants, hash_token, with_stores

_bearer = HTTPBearer(auto_error=False, description="A token made with `oms token create --scope …`")


async def _scopes_for(request: Request, token: str) -> frozenset[str] | None:
    cache = request.app.state.atp_cache
    hit = cache.token(token)
    if hit is not None:
        return hit[2]
    digest = hash_token(token)
    ticket = cache.begin()
    async with request.app.state.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT scopes, store_ids FROM oms.api_token WHERE token_sha256 = %s AND revoked_at IS NULL",
                (digest,),
            )
        ).fetchone()
    scopes = with_stores(row[0], row[1]) if row else None
    cache.put_token(token, digest, scopes, ticket)
    return scopes


def require(scope: str, *alternatives: str):
    """A token granting `scope` (or any of `alternatives`)."""

    async def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> set[str]:
        if credentials is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        scopes = await _scopes_for(request, credentials.credentials)
        if scopes is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
        if not any(grants(scopes, wanted) for wanted in (scope, *alternatives)):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"token lacks scope '{scope}'" + "".join(f" (or '{a}')" for a in alternatives))
        return scopes

    return check


def require_store(scope: str, *alternatives: str):
    """`require(scope, …)` on a route with a `{store_id}` path parameter: a token that names its
    stores (oms token create --scope store --store X) acts for those stores only; any other
    store id is a 403."""
    base = require(scope, *alternatives)

    async def check(request: Request, scopes: set[str] = Depends(base)) -> set[str]:
        store_id = request.path_params.get("store_id")
        if store_id is not None:
            ensure_store(scopes, store_id)
        return scopes

    return check


def ensure_store(scopes: set[str] | frozenset[str], store_id: str) -> None:
    """403 unless the token may act for `store_id` (for a store named in a request body)."""
    if not acts_for_store(scopes, store_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this token does not act for store {store_id}")
