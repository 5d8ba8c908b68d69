"""Bearer-token authentication with scopes; token look-ups are cached briefly per process."""

from __future__ import annotations

import time

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from oms.tokens import grants, hash_token

CACHE_SECONDS = 30.0
_bearer = HTTPBearer(auto_error=False, description="A token made with `oms token create --scope …`")


async def _scopes_for(request: Request, token: str) -> set[str] | None:
    cache: dict[str, tuple[float, set[str] | None]] = request.app.state.token_cache
    digest = hash_token(token)
    hit = cache.get(digest)
    now = time.monotonic()
    if hit and hit[0] > now:
        return hit[1]
    async with request.app.state.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT scopes FROM oms.api_token WHERE token_sha256 = %s AND revoked_at IS NULL", (digest,)
            )
        ).fetchone()
    scopes = set(row[0]) if row else None
    cache[digest] = (now + CACHE_SECONDS, scopes)
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
